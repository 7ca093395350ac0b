/*
    LINEARIZE: per loci chunk, elastic nets from variant dosages to personalized values; then the
    PredictDB databases and covariance files from all chunks
*/

include { ENPACT_LINEARIZE } from '../modules/enpact_linearize/main'
include { ENPACT_DATABASE  } from '../modules/enpact_database/main'

workflow LINEARIZE {

    take:
    ch_personalized   // channel: [ val(meta), path(<loci chunk>.h5) ]
    ch_loci_chunks    // channel: [ val(meta), path(loci chunk) ]
    ch_vcf            // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_gwas_filter    // channel: [ val(meta), path(gwas) or [] ] (value; loci near GWAS signals only)

    main:
    // personalized store and loci table of the same chunk, matched by chunk name
    ch_inputs = ch_personalized
        .map { meta, h5 -> [ meta.id, meta, h5 ] }
        .join(ch_loci_chunks.map { meta, loci -> [ meta.id, loci ] })
        .map { _id, meta, h5, loci -> [ meta, h5, loci ] }

    ENPACT_LINEARIZE(ch_inputs, ch_vcf, ch_gwas_filter)

    // Gather all chunks, sorted by chunk name (the order is part of the task hash and of the databases)
    ch_chunks = ENPACT_LINEARIZE.out.linearized
        .toSortedList { a, b -> a[0].id <=> b[0].id }
        .map { chunks ->
            [ [id: 'databases'], chunks.collect { _meta, chunk -> chunk } ]
        }

    ENPACT_DATABASE(ch_chunks)

    emit:
    linearized = ENPACT_LINEARIZE.out.linearized   // channel: [ val(meta), path(<loci chunk>.h5) ]
    db         = ENPACT_DATABASE.out.db            // channel: [ val(meta), path(NAME.db), path(NAME.txt.gz) ]
    summary    = ENPACT_DATABASE.out.summary       // channel: [ val(meta), path(NAME.summary.tsv) ]
    unfiltered = ENPACT_DATABASE.out.unfiltered    // channel: [ val(meta), path(NAME.unfiltered.db), path(NAME.unfiltered.txt.gz) ]
}
