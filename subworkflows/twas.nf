/*
    TWAS: S-PrediXcan of every GWAS file against the EnPACT database; `enpact twas` names the outputs after the
    GWAS file (the rule `enpact run` uses; ENPACT_CHECK refuses two GWAS files that would share a name)
*/

include { ENPACT_TWAS } from '../modules/enpact_twas/main'

workflow TWAS {

    take:
    ch_gwas   // channel: [ val(meta: id = GWAS file name), path(gwas) ], one per GWAS file
    ch_db     // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ] (value)

    main:
    ENPACT_TWAS(ch_gwas, ch_db)

    emit:
    csv       = ENPACT_TWAS.out.csv         // channel: [ val(meta), path(twas/<gwas>.csv) ]
    qq        = ENPACT_TWAS.out.qq          // channel: [ val(meta), path(twas/<gwas>.qq.png) ]
    manhattan = ENPACT_TWAS.out.manhattan   // channel: [ val(meta), path(twas/<gwas>.manhattan.png) ]
}
