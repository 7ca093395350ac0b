/*
    LINEARIZE: per context x loci chunk, elastic nets from variant dosages to the context's personalized values;
    then each context's PredictDB database and covariance file from all chunks, and with a reference panel
    (covariance_vcf) the covariance S-PrediXcan reads from that panel
*/

include { ENPACT_LINEARIZE                       } from '../modules/enpact_linearize/main'
include { ENPACT_DATABASE                        } from '../modules/enpact_database/main'
include { ENPACT_COVARIANCE as ENPACT_PANEL_COVARIANCE } from '../modules/enpact_covariance/main'

workflow LINEARIZE {

    take:
    ch_personalized   // channel: [ val(meta), path(<loci chunk>.h5) ]
    ch_loci_chunks    // channel: [ val(meta), path(loci chunk) ]
    ch_vcf            // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_context_names  // channel: val(context name), one per context ('' for a single expression)
    ch_panel          // channel: [ val(meta: reference), path(vcf), path(index), val(meta), path(sample ids) or [] ] (value)
    ch_options        // channel: val(step name -> options line) (value; ENPACT_CHECK's options/<step>.args)

    main:
    // personalized store and loci table of the same chunk, matched by chunk name, once per context
    ch_inputs = ch_personalized
        .map { meta, h5 -> [ meta.id, meta, h5 ] }
        .join(ch_loci_chunks.map { meta, loci -> [ meta.id, loci ] })
        .combine(ch_context_names)
        .map { _id, meta, h5, loci, context -> [ meta + [context: context], h5, loci ] }

    ENPACT_LINEARIZE(ch_inputs, ch_vcf, ch_options.map { options -> options.linearize })

    // Gather each context's chunks (groupKey: as soon as its own are done), sorted by chunk name (the order is
    // part of the task hash and of the databases)
    ch_chunks = ENPACT_LINEARIZE.out.linearized
        .map { meta, chunk -> [ groupKey(meta.context, meta.n_loci_chunks), [ meta.id, chunk ] ] }
        .groupTuple()
        .map { context, chunks ->
            [ [id: 'databases', context: context.getGroupTarget()],
              chunks.toSorted { a, b -> a[0] <=> b[0] }.collect { _id, chunk -> chunk } ]
        }

    ENPACT_DATABASE(ch_chunks, ch_options.map { options -> options.database })

    // the covariance from the reference panel (covariance_vcf), named after the database
    ENPACT_PANEL_COVARIANCE(
        ENPACT_DATABASE.out.db
            .combine(ch_panel)
            .filter { _meta, _db, _covariance, panel, _vcf, _tbi, _meta2, _samples -> panel.reference }
            .map { meta, db, _covariance, _panel, _vcf, _tbi, _meta2, _samples -> [ meta + [id: db.baseName], db ] },
        ch_panel.map { meta, vcf, tbi, _meta2, _samples -> [ meta, vcf, tbi ] },
        ch_panel.map { _meta, _vcf, _tbi, meta2, samples -> [ meta2, samples ] },
        ch_options.map { options -> options.covariance }
    )

    // what S-PrediXcan reads per context: the database and the panel's covariance, or the database's own
    ch_twas_db = ENPACT_DATABASE.out.db
        .map { meta, db, covariance -> [ meta.context, meta, db, covariance ] }
        .join(ENPACT_PANEL_COVARIANCE.out.covariance.map { meta, covariance -> [ meta.context, covariance ] },
              remainder: true)
        .filter { _context, meta, _db, _covariance, _panel -> meta }
        .map { _context, meta, db, covariance, panel -> [ meta, db, panel ?: covariance ] }

    emit:
    linearized = ENPACT_LINEARIZE.out.linearized           // channel: [ val(meta), path(<loci chunk>.h5) ]
    db         = ENPACT_DATABASE.out.db                    // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ], one per context
    twas_db    = ch_twas_db                                // channel: [ val(meta), path(NAME.db), path(covariance S-PrediXcan reads) ], one per context
    summary    = ENPACT_DATABASE.out.summary               // channel: [ val(meta), path(NAME.summary.tsv) ]
    unfiltered = ENPACT_DATABASE.out.unfiltered            // channel: [ val(meta), path(NAME.unfiltered.db), path(NAME.unfiltered.txt.gz) ]
    panel      = ENPACT_PANEL_COVARIANCE.out.covariance    // channel: [ val(meta), path(NAME.reference_panel.txt.gz) ]
}
