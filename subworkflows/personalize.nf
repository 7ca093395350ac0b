/*
    PERSONALIZE: loci chunk x sample chunk through predictor + EnPACT model (GPU queue), then one merged
    store per loci chunk
*/

include { ENPACT_PERSONALIZE } from '../modules/enpact_personalize/main'
include { ENPACT_MERGE       } from '../modules/enpact_merge/main'

workflow PERSONALIZE {

    take:
    ch_loci_chunks    // channel: [ val(meta: id, n_loci_chunks), path(loci chunk) ]
    ch_sample_chunks  // channel: [ val(meta: id, n_sample_chunks), path(sample chunk) ]
    ch_fasta          // channel: [ val(meta), path(fasta), path(fai) ] (value)
    ch_vcf            // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_model          // channel: [ val(meta), path(model/) ] (value)
    ch_weights        // channel: [ val(hugging face id), path(checkpoint dir) ], one of them empty (value)
    ch_panel_samples  // channel: [ val(meta), path(sample ids) or [] ] (value; the linearization panel, for variants linearizable)

    main:
    // Scatter: the cross product of loci chunks and sample chunks, one task each
    ch_jobs = ch_loci_chunks
        .combine(ch_sample_chunks)
        .map { meta, loci, meta_samples, samples ->
            [ meta + [samples: meta_samples.id, n_sample_chunks: meta_samples.n_sample_chunks], loci, samples ]
        }

    ENPACT_PERSONALIZE(ch_jobs, ch_fasta, ch_vcf, ch_model, ch_weights, ch_panel_samples)

    // Gather per loci chunk. groupKey carries the number of sample chunks, so a loci chunk is merged as
    // soon as its own pieces are done instead of waiting for the whole scatter. Pieces sorted by name.
    ch_pieces = ENPACT_PERSONALIZE.out.h5
        .map { meta, h5 -> [ groupKey(meta.subMap('id', 'n_loci_chunks'), meta.n_sample_chunks), h5 ] }
        .groupTuple()
        .map { key, h5s -> [ key.getGroupTarget(), h5s.toSorted { h5 -> h5.name } ] }

    ENPACT_MERGE(ch_pieces)

    emit:
    pieces = ENPACT_PERSONALIZE.out.h5   // channel: [ val(meta: id, n_loci_chunks, samples, n_sample_chunks), path(<loci chunk>.<sample chunk>.h5) ]
    h5     = ENPACT_MERGE.out.h5         // channel: [ val(meta: id, n_loci_chunks), path(<loci chunk>.h5) ]
}
