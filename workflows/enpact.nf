/*
========================================================================================
    ENPACT: the whole DAG, top to bottom
========================================================================================
    CHECK -> LOCI (per context; LOCI_UNION of several) -> CHUNK -> PREDICT (reference, per loci chunk, GPU)
          -> MERGE_FEATURES -> TRAIN (per context; evaluated on the held-out chromosomes)
          -> PLAN (per loci chunk) -> PERSONALIZE (per part of a plan, GPU; every context's model) -> MERGE
          -> ACCURACY (per context) -> LINEARIZE (per context x loci chunk) -> DATABASE (per context)
          -> TWAS (per GWAS file; per context) -> FINEMAP (per TWAS task) -> MULTIXCAN (per GWAS file, several
          contexts) -> REPORT
    Every process runs one `enpact <subcommand>` (modules/<process>/main.nf) with its step's
    options, which ENPACT_CHECK derives from the run's parameters (one line per step, given to
    each task as a value); this workflow reads no params. Lists that feed one task are sorted
    by name first: input order is part of the task hash, and -resume depends on it.
----------------------------------------------------------------------------------------
*/

include { ENPACT_CHECK          } from '../modules/enpact_check/main'
include { ENPACT_LOCI           } from '../modules/enpact_loci/main'
include { ENPACT_LOCI_UNION     } from '../modules/enpact_loci_union/main'
include { ENPACT_CHUNK          } from '../modules/enpact_chunk/main'
include { ENPACT_SELECT         } from '../modules/enpact_select/main'
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
    ch_expression        // channel: [ val(meta), path(expression.tsv) or [] ] (value; [] with contexts)
    ch_contexts          // channel: [ val(meta: id, context, annotation_format), path(annotation) or [], path(expression) ], one per context (meta.context null for a single expression)
    ch_context_sheet     // channel: [ val(meta), path(contexts.csv) or [], [ path(the files it names) ] ] (value; for ENPACT_CHECK)
    context_names        // val: the contexts' names in the order of the sample sheet ([] for a single expression)
    ch_vcf               // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_samples           // channel: [ val(meta), path(sample ids) or [] ] (value; [] = all VCF samples)
    ch_covariance_panel  // channel: [ val(meta), path(vcf) or [], path(index) or [], val(meta), path(sample ids) or [] ] (value; covariance_vcf)
    ch_weights           // channel: [ val(hugging face id), path(checkpoint dir) ], one of them empty (value)
    ch_gwas              // channel: [ val(meta: id = GWAS file name), path(gwas) ], one per GWAS file
    ch_selection         // channel: [ val(meta), path(gwas) or [], path(credible-set variants) or [], path(regions) or [] ] (value)
    selecting            // val: whether only the loci the selection names are personalized
    ch_truth             // channel: [ val(meta), path(truth table) or [] ] (value; planted causal genes for the report)

    main:

    //
    // 0. The parameters and input files, checked by the code `enpact run` runs first, and each step's options from
    //    them; every task below waits for this one (its options come from it). The GWAS files in the order of
    //    params.gwas (their output names are checked by that order).
    //
    ENPACT_CHECK(
        ch_params,
        ch_fasta,
        ch_annotation,
        ch_expression,
        ch_vcf,
        ch_samples,
        ch_gwas.map { _meta, gwas -> gwas }.toList(),
        ch_context_sheet
    )
    ch_checked = ENPACT_CHECK.out.params_json   // one item: [ meta, pipeline_info/params.json ]

    // Each step's options (options/<step>.args, written by `enpact check` from the step's configuration) as one value:
    // step name -> its options line. Each module receives its own step's line as a `val` input, not the file: the
    // standard cache hashes a staged file by its path, size and modification time, and ENPACT_CHECK runs again (in a
    // new work directory) whenever any parameter changes, so a staged options file would invalidate every task; a
    // `val` is hashed by its content, so a task's hash changes only when its own step's options change (-resume then
    // keeps the predictor tasks when only a linearization or TWAS parameter changed).
    ch_options = ENPACT_CHECK.out.options
        .map { _meta, files -> [ files ].flatten().collectEntries { f -> [ (f.baseName): f.text.trim() ] } }
        .first()   // a value channel: read by every task

    //
    // 1. Loci: one per feature of each context's training matrix, with its chromosome split; with several
    //    contexts, their union (one predictor pass then serves them all)
    //
    ENPACT_LOCI(ch_contexts, ch_fasta, ch_options.map { options -> options.loci })

    ENPACT_LOCI_UNION(
        ENPACT_LOCI.out.loci
            .filter { meta, _loci -> meta.context }
            .toList()
            .filter { tables -> tables }
            .map { tables -> [ [id: 'loci', contexts: context_names],
                               context_names.collect { name -> tables.find { table -> table[0].context == name }[1] } ] }
    )
    ch_loci = ENPACT_LOCI.out.loci
        .filter { meta, _loci -> !meta.context }
        .mix(ENPACT_LOCI_UNION.out.loci)

    //
    // 2. Chunks of loci, named from their content: <first>--<last>
    //
    ENPACT_CHUNK(ch_loci, ch_options.map { options -> options.chunk })

    ch_loci_chunks = ENPACT_CHUNK.out.loci
        .flatMap { _meta, files -> [ files ].flatten() }
        .toSortedList { a, b -> a.name <=> b.name }
        .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_loci_chunks: files.size()], f ] } }

    //
    // 3. Reference features: the predictor on each loci chunk (GPU label), merged into one store
    //
    ENPACT_PREDICT(ch_loci_chunks, ch_fasta, ch_weights, ch_options.map { options -> options.predict })

    ENPACT_MERGE_FEATURES(
        ENPACT_PREDICT.out.h5
            .map { _meta, h5 -> h5 }
            .toSortedList { a, b -> a.name <=> b.name }
            .map { h5s -> [ [id: 'reference'], h5s ] }
    )

    //
    // 3b. The loci to personalize: all of them, or those near the trait's signal (GWAS p-value, credible-set
    //     variants, regions), in chunks of their own; the model below still trains on every locus
    //
    ENPACT_SELECT(
        ch_loci
            .combine(ENPACT_MERGE_FEATURES.out.h5)
            .filter { _meta, _loci, _meta2, _features -> selecting }
            .map { _meta, loci, _meta2, features -> [ [id: 'selected'], loci, features ] },
        ch_selection.map { _meta, gwas, _credible, _regions -> [ [id: 'gwas'], gwas ] },
        ch_selection.map { _meta, _gwas, credible, _regions -> [ [id: 'credible_sets'], credible ] },
        ch_selection.map { _meta, _gwas, _credible, regions -> [ [id: 'regions'], regions ] },
        ch_options.map { options -> options.select }
    )
    ch_personal_chunks = selecting
        ? ENPACT_SELECT.out.chunks
            .flatMap { _meta, files -> [ files ].flatten() }
            .toSortedList { a, b -> a.name <=> b.name }
            .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_loci_chunks: files.size()], f ] } }
        : ch_loci_chunks

    //
    // 4. One EnPACT model per context: fitted on the train chromosomes, evaluated on valid and test by
    //    `enpact train` itself
    //
    ch_expressions = ch_contexts.map { meta, _annotation, expression -> [ meta, expression ] }
    TRAIN(
        ENPACT_LOCI.out.loci
            .join(ch_expressions)
            .combine(ENPACT_MERGE_FEATURES.out.h5)
            .map { meta, loci, expression, _meta2, features -> [ meta, features, loci, expression ] },
        ch_options
    )
    // value channel: every context's model, in the order of the sample sheet, for every personalize task
    ch_models = TRAIN.out.model
        .toList()
        .filter { models -> models && models.size() >= context_names.size() }   // not when a training task failed (the run is being cancelled)
        .map { models -> [ [id: 'models', contexts: context_names],
                           context_names ? context_names.collect { name -> models.find { model -> model[0].context == name }[1] }
                                         : models[0][1] ] }

    //
    // 5. Personalized predictions: per loci chunk, the distinct windows over every individual (plan), predicted in
    //    parts (GPU label; once per distinct window, every context's model applied), one store per loci chunk
    //
    PERSONALIZE(ch_personal_chunks, ch_fasta, ch_vcf, ch_models, ch_weights, ch_samples, ENPACT_MERGE_FEATURES.out.h5,
                ch_options)

    //
    // 5b. Personalized accuracy per context: all merged stores against the context's observed matrix
    //
    ENPACT_ACCURACY(
        PERSONALIZE.out.h5
            .map { _meta, h5 -> h5 }
            .toSortedList { a, b -> a.name <=> b.name }
            .map { stores -> [ stores ] }   // one item: combine appends the elements of a list
            .combine(ch_expressions)
            .map { stores, meta, expression -> [ [id: 'accuracy', context: meta.context], stores, expression ] },
        ch_options.map { options -> options.accuracy }
    )

    //
    // 6. Linearization per context x loci chunk, then each context's PredictDB database (and, with
    //    covariance_vcf, its covariance from the reference panel)
    //
    LINEARIZE(PERSONALIZE.out.h5, ch_personal_chunks, ch_vcf,
              ch_contexts.map { meta, _annotation, _expression -> meta.context ?: '' }, ch_covariance_panel, ch_options)

    //
    // 7. TWAS: S-PrediXcan per GWAS file (per context: every GWAS file in one task), and with several contexts
    //    S-MultiXcan per GWAS file on the joint covariance of the contexts' models; each TWAS task's regions fine-mapped (FOCUS's model)
    //
    TWAS(ch_gwas, LINEARIZE.out.twas_db, context_names, ch_covariance_panel, ch_options)

    //
    // 8. Report, rendered from the outputs staged in the results layout
    //
    ENPACT_REPORT(
        ch_checked
            .combine(ch_truth)
            .map { meta, params_json, _meta2, truth -> [ meta + [id: 'report'], params_json, truth ] },
        context_names
            ? TRAIN.out.model.map { _meta, model -> model }.toSortedList { a, b -> a.name <=> b.name }
            : TRAIN.out.files.flatMap { _meta, files -> [ files ].flatten() }.toSortedList { a, b -> a.name <=> b.name },
        context_names
            ? ENPACT_ACCURACY.out.accuracy.map { _meta, table, _summary -> table.parent }.toSortedList { a, b -> a.name <=> b.name }
            : ENPACT_ACCURACY.out.accuracy.map { _meta, table, summary -> [ table, summary ] },
        LINEARIZE.out.db.map { _meta, db, covariance -> [ db, covariance ] }
            .mix(LINEARIZE.out.summary.map { _meta, summary -> [ summary ] })
            .flatten()
            .toSortedList { a, b -> a.name <=> b.name },
        context_names
            ? TWAS.out.folder.map { _meta, folder -> folder }.toSortedList { a, b -> a.name <=> b.name }
            : TWAS.out.csv.mix(TWAS.out.qq, TWAS.out.manhattan)
                .flatMap { _meta, files -> [ files ].flatten() }
                .toSortedList { a, b -> a.name <=> b.name },
        TWAS.out.multixcan
            .flatMap { _meta, files -> [ files ].flatten() }
            .toSortedList { a, b -> a.name <=> b.name },
        context_names
            ? TWAS.out.finemap.map { _meta, tables -> [ tables ].flatten()[0].parent }.toSortedList { a, b -> a.name <=> b.name }
            : TWAS.out.finemap.flatMap { _meta, files -> [ files ].flatten() }.toSortedList { a, b -> a.name <=> b.name }
    )

    emit:
    params_json = ch_checked                    // channel: [ val(meta), path(pipeline_info/params.json) ]
    loci        = ch_loci                       // channel: [ val(meta), path(loci.tsv) ] (the union with several contexts)
    reference   = ENPACT_MERGE_FEATURES.out.h5  // channel: [ val(meta), path(reference.h5) ]
    model       = TRAIN.out.model               // channel: [ val(meta), path(model/) ], one per context
    db          = LINEARIZE.out.db              // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ], one per context
    twas        = TWAS.out.csv                  // channel: [ val(meta), path(twas/<gwas>.csv) ]
    report      = ENPACT_REPORT.out.html        // channel: [ val(meta), path(report/index.html) ]
}
