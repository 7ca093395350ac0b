/*
========================================================================================
    ENPACT: the whole DAG, top to bottom
========================================================================================
    LOCI -> CHUNK -> PREDICT (reference, per loci chunk, GPU) -> MERGE_FEATURES
         -> TRAIN (train + evaluate)
         -> PERSONALIZE (loci chunk x sample chunk, GPU) -> MERGE (per loci chunk)
         -> LINEARIZE (per loci chunk) -> DATABASE (all chunks)
         -> TWAS (per GWAS file) -> REPORT
    Every process runs one `enpact <subcommand>` (modules/<process>/main.nf). Lists that feed one task
    are sorted by name first: input order is part of the task hash, and -resume depends on it.
----------------------------------------------------------------------------------------
*/

include { ENPACT_LOCI           } from '../modules/enpact_loci/main'
include { ENPACT_CHUNK          } from '../modules/enpact_chunk/main'
include { ENPACT_PREDICT        } from '../modules/enpact_predict/main'
include { ENPACT_MERGE_FEATURES } from '../modules/enpact_merge_features/main'
include { ENPACT_REPORT         } from '../modules/enpact_report/main'
include { TRAIN                 } from '../subworkflows/train'
include { PERSONALIZE           } from '../subworkflows/personalize'
include { LINEARIZE             } from '../subworkflows/linearize'
include { TWAS                  } from '../subworkflows/twas'

workflow ENPACT {

    take:
    ch_fasta        // channel: [ val(meta), path(fasta), path(fai) ] (value)
    ch_annotation   // channel: [ val(meta), path(annotation) ] (value)
    ch_expression   // channel: [ val(meta), path(expression.tsv) ] (value)
    ch_vcf          // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_samples      // channel: [ val(meta), path(sample ids) or [] ] (value; [] = all VCF samples)
    ch_weights      // channel: [ val(hugging face id), path(checkpoint dir) ], one of them empty (value)
    ch_gwas         // channel: [ val(meta: id = GWAS name), path(gwas) ], one per GWAS file
    ch_gwas_filter  // channel: [ val(meta), path(gwas) or [] ] (value; linearize loci near GWAS signals)

    main:
    ch_versions = channel.empty()

    //
    // 1. Loci: one per feature of the training matrix, with its chromosome split
    //
    ENPACT_LOCI(
        ch_annotation
            .combine(ch_expression)
            .map { meta, annotation, _meta2, expression -> [ meta, annotation, expression ] },
        ch_fasta
    )
    ch_versions = ch_versions.mix(ENPACT_LOCI.out.versions)

    //
    // 2. Chunks of loci (params.loci_per_chunk) and of samples (params.samples_per_chunk), named from
    //    their content: <first>--<last>
    //
    ENPACT_CHUNK(ENPACT_LOCI.out.loci, ch_vcf, ch_samples)
    ch_versions = ch_versions.mix(ENPACT_CHUNK.out.versions)

    ch_loci_chunks = ENPACT_CHUNK.out.loci
        .flatMap { _meta, files -> files instanceof List ? files : [ files ] }
        .toSortedList { a, b -> a.name <=> b.name }
        .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_loci_chunks: files.size()], f ] } }

    ch_sample_chunks = ENPACT_CHUNK.out.samples
        .flatMap { _meta, files -> files instanceof List ? files : [ files ] }
        .toSortedList { a, b -> a.name <=> b.name }
        .flatMap { files -> files.collect { f -> [ [id: f.baseName, n_sample_chunks: files.size()], f ] } }

    //
    // 3. Reference features: the predictor on each loci chunk (GPU label), merged into one store
    //
    ENPACT_PREDICT(ch_loci_chunks, ch_fasta, ch_weights)
    ch_versions = ch_versions.mix(ENPACT_PREDICT.out.versions.first())

    ENPACT_MERGE_FEATURES(
        ENPACT_PREDICT.out.h5
            .map { _meta, h5 -> h5 }
            .toSortedList { a, b -> a.name <=> b.name }
            .map { h5s -> [ [id: 'reference'], h5s ] }
    )
    ch_versions = ch_versions.mix(ENPACT_MERGE_FEATURES.out.versions)

    //
    // 4. EnPACT model: train on the train chromosomes, evaluate on valid and test
    //
    TRAIN(
        ENPACT_MERGE_FEATURES.out.h5
            .combine(ENPACT_LOCI.out.loci.map { _meta, loci -> loci }),   // [ meta, reference.h5, loci.tsv ]
        ch_expression
    )
    ch_versions = ch_versions.mix(TRAIN.out.versions)
    ch_model    = TRAIN.out.model.first()   // value channel: reused by every personalize task

    //
    // 5. Personalized predictions: loci chunk x sample chunk (GPU label), one merged store per loci chunk
    //
    PERSONALIZE(ch_loci_chunks, ch_sample_chunks, ch_fasta, ch_vcf, ch_model, ch_weights)
    ch_versions = ch_versions.mix(PERSONALIZE.out.versions)

    //
    // 6. Linearization per loci chunk, then the PredictDB databases from all chunks
    //
    LINEARIZE(PERSONALIZE.out.h5, ch_loci_chunks, ch_vcf, ch_gwas_filter)
    ch_versions = ch_versions.mix(LINEARIZE.out.versions)

    //
    // 7. TWAS: S-PrediXcan per GWAS file
    //
    TWAS(ch_gwas, LINEARIZE.out.db.first())
    ch_versions = ch_versions.mix(TWAS.out.versions)

    //
    // 8. Report, from the outputs staged in the results layout
    //
    // pipeline_info/params.json as `enpact run` writes it (`enpact report --outdir results` re-reads it)
    channel.value(groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(params)))
        .collectFile(name: 'params.json', storeDir: "${params.outdir}/pipeline_info")

    // the report's copy names the training matrix by its staged file name
    ch_report_params = ch_expression
        .map { _meta, expression -> groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(params + [expression: expression.name])) }
        .collectFile(name: 'params.json')
        .combine(ch_expression)
        .map { json, _meta, expression -> [ [id: 'report'], json, expression ] }

    ENPACT_REPORT(
        ch_report_params,
        TRAIN.out.files.flatMap { _meta, files -> files instanceof List ? files : [ files ] }
            .toSortedList { a, b -> a.name <=> b.name },
        params.delete_personalized
            ? channel.value([])
            : PERSONALIZE.out.h5.map { _meta, h5 -> h5 }.toSortedList { a, b -> a.name <=> b.name },
        LINEARIZE.out.db.map { _meta, db, covariance -> [ db, covariance ] }
            .mix(LINEARIZE.out.summary.map { _meta, summary -> [ summary ] })
            .flatten()
            .toSortedList { a, b -> a.name <=> b.name },
        TWAS.out.csv.mix(TWAS.out.qq, TWAS.out.manhattan)
            .map { _meta, file -> file }
            .toSortedList { a, b -> a.name <=> b.name }
    )
    ch_versions = ch_versions.mix(ENPACT_REPORT.out.versions)

    //
    // Software versions of every process -> pipeline_info/enpact_software_versions.yml
    //
    ch_versions
        .unique()
        .map { versions -> versions.text }
        .unique()
        .collectFile(name: 'enpact_software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true, newLine: true)

    emit:
    loci       = ENPACT_LOCI.out.loci          // channel: [ val(meta), path(loci.tsv) ]
    reference  = ENPACT_MERGE_FEATURES.out.h5  // channel: [ val(meta), path(reference.h5) ]
    model      = TRAIN.out.model               // channel: [ val(meta), path(model/) ]
    db         = LINEARIZE.out.db              // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ]
    twas       = TWAS.out.csv                  // channel: [ val(meta), path(<gwas>.csv) ]
    report     = ENPACT_REPORT.out.html        // channel: [ val(meta), path(report/index.html) ]
    versions   = ch_versions                   // channel: [ path(versions.yml) ]
}
