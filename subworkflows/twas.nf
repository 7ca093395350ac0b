/*
    TWAS: S-PrediXcan of every GWAS file against the EnPACT database
*/

include { ENPACT_TWAS } from '../modules/enpact_twas/main'

workflow TWAS {

    take:
    ch_gwas   // channel: [ val(meta: id = GWAS name), path(gwas) ], one per GWAS file
    ch_db     // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ] (value)

    main:
    ch_versions = channel.empty()

    ENPACT_TWAS(ch_gwas, ch_db)
    ch_versions = ch_versions.mix(ENPACT_TWAS.out.versions.first())

    emit:
    csv       = ENPACT_TWAS.out.csv         // channel: [ val(meta), path(<gwas>.csv) ]
    qq        = ENPACT_TWAS.out.qq          // channel: [ val(meta), path(<gwas>.qq.png) ]
    manhattan = ENPACT_TWAS.out.manhattan   // channel: [ val(meta), path(<gwas>.manhattan.png) ]
    versions  = ch_versions                 // channel: [ path(versions.yml) ]
}
