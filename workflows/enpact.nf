/*
========================================================================================
    ENPACT: the whole DAG, top to bottom
========================================================================================
    CHECK -> LOCI -> CHUNK -> PREDICT (reference, per loci chunk, GPU) -> MERGE_FEATURES
          -> TRAIN (fit, evaluated on the held-out chromosomes)
          -> PERSONALIZE (loci chunk x sample chunk, GPU) -> MERGE (per loci chunk)
          -> LINEARIZE (per loci chunk) -> DATABASE (all chunks)
          -> TWAS (per GWAS file) -> REPORT
    Every process runs one `enpact <subcommand>` (modules/<process>/main.nf) with the options
    of conf/modules.config; this workflow reads no params. Lists that feed one task are sorted
    by name first: input order is part of the task hash, and -resume depends on it.
----------------------------------------------------------------------------------------
*/

include { ENPACT_CHECK          } from '../modules/enpact_check/main'
include { ENPACT_LOCI           } from '../modules/enpact_loci/main'
include { ENPACT_CHUNK          } from '../modules/enpact_chunk/main'
include { ENPACT_PREDICT        } from '../modules/enpact_predict/main'
include { ENPACT_MERGE_FEATURES } from '../modules/enpact_merge_features/main'
include { ENPACT_ACCURACY       } from '../modules/enpact_accuracy/main'
include { ENPACT_REPORT         } from '../modules/enpact_report/main'
include { TRAIN                 } from '../subworkflows/train'
include { PERSONALIZE           } from '../subworkflows/personalize'
include { LINEARIZE             } from '../subworkflows/linearize'
include { TWAS                  } from '../subworkflows/twas'

workflow ENPACT {

    take:
    ch_params            // channel: [ val(meta), path(nextflow_params.json) ]
    ch_fasta             // channel: [ val(meta), path(fasta), path(fai) ] (value)
    ch_annotation        // channel: [ val(meta), path(annotation) or [] ] (value; [] with annotation_format names)
    ch_expression        // channel: [ val(meta), path(expression.tsv) ] (value)
    ch_vcf               // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_samples           // channel: [ val(meta), path(sample ids) or [] ] (value; [] = all VCF samples)
    ch_weights           // channel: [ val(hugging face id), path(checkpoint dir) ], one of them empty (value)
    ch_gwas              // channel: [ val(meta: id = GWAS file name), path(gwas) ], one per GWAS file
    ch_gwas_filter       // channel: [ val(meta), path(gwas) or [] ] (value; linearize loci near GWAS signals)
    ch_truth             // channel: [ val(meta), path(truth table) or [] ] (value; planted causal genes for the report)

    main:

    //
    // 0. The parameters and input files, checked by the code `enpact run` runs first; every task below waits
    //    for this one. The GWAS files in the order of params.gwas (their output names are checked by that order).
    //
    ENPACT_CHECK(
        ch_params,
        ch_fasta,
        ch_annotation,
        ch_expression,
        ch_vcf,
        ch_samples,
        ch_gwas.map { _meta, gwas -> gwas }.toList()
    )
    ch_checked = ENPACT_CHECK.out.params_json.first()   // value channel: [ meta, pipeline_info/params.json ]

    //
    // 1. Loci: one per feature of the training matrix, with its chromosome split
    //
    ENPACT_LOCI(
        ch_annotation
            .combine(ch_expression)
            .combine(ch_checked)
            .map { meta, annotation, _meta2, expression, _meta3, _checked -> [ meta, annotation, expression ] },
        ch_fasta
    )

    //
    // 2. Chunks of loci and of samples, named from their content: <first>--<last>
    //
    ENPACT_CHUNK(ENPACT_LOCI.out.loci, ch_vcf, ch_samples)

    ch_loci_chunks = ENPACT_CHUNK.out.loci
        .flatMap { _meta, files -> [ files ].flatten() }
        .toSortedList { a, b -> a.name <=> b.name }
        .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_loci_chunks: files.size()], f ] } }

    ch_sample_chunks = ENPACT_CHUNK.out.samples
        .flatMap { _meta, files -> [ files ].flatten() }
        .toSortedList { a, b -> a.name <=> b.name }
        .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_sample_chunks: files.size()], f ] } }

    //
    // 3. Reference features: the predictor on each loci chunk (GPU label), merged into one store
    //
    ENPACT_PREDICT(ch_loci_chunks, ch_fasta, ch_weights)

    ENPACT_MERGE_FEATURES(
        ENPACT_PREDICT.out.h5
            .map { _meta, h5 -> h5 }
            .toSortedList { a, b -> a.name <=> b.name }
            .map { h5s -> [ [id: 'reference'], h5s ] }
    )

    //
    // 4. EnPACT model: fitted on the train chromosomes, evaluated on valid and test by `enpact train` itself
    //
    TRAIN(
        ENPACT_MERGE_FEATURES.out.h5
            .combine(ENPACT_LOCI.out.loci.map { _meta, loci -> loci }),   // [ meta, reference.h5, loci.tsv ]
        ch_expression
    )
    ch_model = TRAIN.out.model.first()   // value channel: reused by every personalize task

    //
    // 5. Personalized predictions: loci chunk x sample chunk (GPU label), one merged store per loci chunk
    //
    PERSONALIZE(ch_loci_chunks, ch_sample_chunks, ch_fasta, ch_vcf, ch_model, ch_weights)

    //
    // 5b. Personalized accuracy: all merged stores against the observed matrix (a table the report renders)
    //
    ENPACT_ACCURACY(
        PERSONALIZE.out.h5
            .map { _meta, h5 -> h5 }
            .toSortedList { a, b -> a.name <=> b.name }
            .combine(ch_expression)
            .map { stores, meta, expression -> [ meta + [id: 'accuracy'], stores, expression ] }
    )

    //
    // 6. Linearization per loci chunk, then the PredictDB databases from all chunks
    //
    LINEARIZE(PERSONALIZE.out.h5, ch_loci_chunks, ch_vcf, ch_gwas_filter)

    //
    // 7. TWAS: S-PrediXcan per GWAS file
    //
    TWAS(ch_gwas, LINEARIZE.out.db.first())

    //
    // 8. Report, rendered from the outputs staged in the results layout
    //
    ENPACT_REPORT(
        ch_checked
            .combine(ch_truth)
            .map { meta, params_json, _meta2, truth -> [ meta + [id: 'report'], params_json, truth ] },
        TRAIN.out.files
            .flatMap { _meta, files -> [ files ].flatten() }
            .toSortedList { a, b -> a.name <=> b.name },
        ENPACT_ACCURACY.out.accuracy.map { _meta, table, summary -> [ table, summary ] },
        LINEARIZE.out.db.map { _meta, db, covariance -> [ db, covariance ] }
            .mix(LINEARIZE.out.summary.map { _meta, summary -> [ summary ] })
            .flatten()
            .toSortedList { a, b -> a.name <=> b.name },
        TWAS.out.csv.mix(TWAS.out.qq, TWAS.out.manhattan)
            .flatMap { _meta, files -> [ files ].flatten() }
            .toSortedList { a, b -> a.name <=> b.name }
    )

    emit:
    params_json = ch_checked                    // channel: [ val(meta), path(pipeline_info/params.json) ]
    loci        = ENPACT_LOCI.out.loci          // channel: [ val(meta), path(loci.tsv) ]
    reference   = ENPACT_MERGE_FEATURES.out.h5  // channel: [ val(meta), path(reference.h5) ]
    model       = TRAIN.out.model               // channel: [ val(meta), path(model/) ]
    db          = LINEARIZE.out.db              // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ]
    twas        = TWAS.out.csv                  // channel: [ val(meta), path(twas/<gwas>.csv) ]
    report      = ENPACT_REPORT.out.html        // channel: [ val(meta), path(report/index.html) ]
}
