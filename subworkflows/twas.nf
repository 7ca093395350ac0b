/*
    TWAS: S-PrediXcan of every GWAS file against each context's database (one task per GWAS file; with several
    contexts, one task per context taking every GWAS file, its results in twas/<context>/), and with several
    contexts S-MultiXcan per GWAS file on the joint SNP covariance of the contexts' models; each TWAS task's results
    fine-mapped (FOCUS's model) with the LD of the covariance panel. `enpact twas` and
    `enpact multixcan` name the outputs after the GWAS file (the rule `enpact run` uses; ENPACT_CHECK refuses two
    GWAS files that would share a name)
*/

include { ENPACT_TWAS                                  } from '../modules/enpact_twas/main'
include { ENPACT_COVARIANCE as ENPACT_JOINT_COVARIANCE } from '../modules/enpact_covariance/main'
include { ENPACT_MULTIXCAN                             } from '../modules/enpact_multixcan/main'
include { ENPACT_FINEMAP                               } from '../modules/enpact_finemap/main'

workflow TWAS {

    take:
    ch_gwas         // channel: [ val(meta: id = GWAS file name), path(gwas) ], one per GWAS file
    ch_db           // channel: [ val(meta: context), path(NAME.db), path(covariance) ], one per context
    context_names   // val: the contexts' names in the order of the sample sheet ([] for a single expression)
    ch_panel        // channel: [ val(meta), path(vcf), path(index), val(meta), path(sample ids) or [] ] (value)
    ch_options      // channel: val(step name -> options line) (value; ENPACT_CHECK's options/<step>.args)

    main:
    ch_all_gwas = ch_gwas
        .map { _meta, gwas -> gwas }
        .toSortedList { a, b -> a.name <=> b.name }
        .filter { files -> files }
    ch_jobs = (context_names
            ? ch_db.combine(ch_all_gwas.map { files -> [ files ] })
                .map { meta, db, covariance, files -> [ [id: meta.context], files, meta, db, covariance ] }
            : ch_gwas.combine(ch_db))
        .multiMap { meta, gwas, meta2, db, covariance ->
            gwas: [ meta, gwas ]
            db:   [ meta2, db, covariance ]
        }

    ENPACT_TWAS(ch_jobs.gwas, ch_jobs.db, ch_options.map { options -> options.twas })
    // the task's folder of the tables (the module emits files only: the publisher keeps the outermost of nested outputs)
    ch_twas_folder = ENPACT_TWAS.out.csv.map { meta, tables -> [ meta, [ tables ].flatten()[0].parent ] }

    // fine-mapping of each TWAS task's results, with the database they come from and the LD panel
    ch_finemap = ENPACT_TWAS.out.csv
        .combine(ch_db)
        .filter { meta, _tables, meta2, _db, _covariance -> !context_names || meta.id == meta2.context }
        .multiMap { meta, tables, meta2, db, _covariance ->
            twas: [ meta, tables ]
            db:   [ meta2, db ]
        }

    ENPACT_FINEMAP(
        ch_finemap.twas,
        ch_finemap.db,
        ch_panel.map { meta, vcf, tbi, _meta2, _samples -> [ meta, vcf, tbi ] },
        ch_panel.map { _meta, _vcf, _tbi, meta2, samples -> [ meta2, samples ] },
        ch_options.map { options -> options.finemap }
    )

    // S-MultiXcan: the contexts' databases and S-PrediXcan folders in the order of the sample sheet
    ch_databases = ch_db
        .toList()
        .filter { _dbs -> context_names }
        .map { dbs -> [ dbs ] }   // one item: combine appends the elements of a list
        .combine(ch_all_gwas.map { files -> [ files ] })
        .map { dbs, _files -> [ [id: 'snp_covariance'],
                                context_names.collect { name -> dbs.find { db -> db[0].context == name }[1] } ] }

    ENPACT_JOINT_COVARIANCE(
        ch_databases,
        ch_panel.map { meta, vcf, tbi, _meta2, _samples -> [ meta, vcf, tbi ] },
        ch_panel.map { _meta, _vcf, _tbi, meta2, samples -> [ meta2, samples ] },
        ch_options.map { options -> options.covariance }
    )

    ENPACT_MULTIXCAN(
        ch_gwas.filter { _gwas -> context_names },
        ch_databases
            .combine(ch_twas_folder.toList().map { folders -> [ folders ] })
            .combine(ENPACT_JOINT_COVARIANCE.out.covariance)
            .map { _meta, dbs, folders, _meta2, covariance ->
                [ [id: 'contexts', contexts: context_names], dbs,
                  context_names.collect { name -> folders.find { folder -> folder[0].id == name }[1] }, covariance ] },
        ch_options.map { options -> options.multixcan }
    )

    emit:
    csv       = ENPACT_TWAS.out.csv               // channel: [ val(meta), path(twas/<gwas>.csv) or [ twas/<context>/<gwas>.csv ] ]
    qq        = ENPACT_TWAS.out.qq                // channel: [ val(meta), path(*.qq.png) ]
    manhattan = ENPACT_TWAS.out.manhattan         // channel: [ val(meta), path(*.manhattan.png) ]
    folder    = ch_twas_folder                    // channel: [ val(meta), path(twas/ or twas/<context>/) ]
    finemap   = ENPACT_FINEMAP.out.tsv            // channel: [ val(meta), path(finemap/<gwas>.tsv) or [ finemap/<context>/<gwas>.tsv ] ]
    multixcan = ENPACT_MULTIXCAN.out.tsv.mix(ENPACT_MULTIXCAN.out.qq)   // channel: [ val(meta), path(multixcan/<gwas>.tsv or .qq.png) ]
    snp_covariance = ENPACT_JOINT_COVARIANCE.out.covariance           // channel: [ val(meta), path(multixcan/snp_covariance.txt.gz) ]
}
