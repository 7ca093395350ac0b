/*
    PERSONALIZE: per loci chunk, a plan of its distinct haplotype windows over every individual (ENPACT_PLAN);
    its parts through predictor + every EnPACT model (GPU queue, one task per part: the predictor runs once per
    distinct window, whatever the chunk sizes); then one store per loci chunk, each haplotype given its window's
    value (ENPACT_MERGE)
*/

include { ENPACT_PLAN        } from '../modules/enpact_plan/main'
include { ENPACT_PERSONALIZE } from '../modules/enpact_personalize/main'
include { ENPACT_MERGE       } from '../modules/enpact_merge/main'

workflow PERSONALIZE {

    take:
    ch_loci_chunks    // channel: [ val(meta: id, n_loci_chunks), path(loci chunk) ]
    ch_fasta          // channel: [ val(meta), path(fasta), path(fai) ] (value)
    ch_vcf            // channel: [ val(meta), path(vcf), path(index) ] (value)
    ch_model          // channel: [ val(meta), path(model/) ] (value)
    ch_weights        // channel: [ val(hugging face id), path(checkpoint dir) ], one of them empty (value)
    ch_samples        // channel: [ val(meta), path(sample ids) or [] ] (value; the individuals, and the linearization panel)
    ch_reference      // channel: [ val(meta), path(reference.h5) ] (value; its predictor window)
    ch_options        // channel: val(step name -> options line) (value; ENPACT_CHECK's options/<step>.args)

    main:
    ENPACT_PLAN(ch_loci_chunks, ch_fasta, ch_vcf, ch_samples, ch_reference, ch_options.map { options -> options.plan })

    // Scatter: the parts of each loci chunk's plan, one task each (the plan says how many)
    ch_jobs = ENPACT_PLAN.out.plan
        .join(ch_loci_chunks)
        .flatMap { meta, plan, parts, loci ->
            def n = parts.text.trim().toInteger()
            (0..<n).collect { part -> [ meta + [part: part, n_parts: n], loci, plan ] }
        }

    ENPACT_PERSONALIZE(ch_jobs, ch_fasta, ch_vcf, ch_model, ch_weights, ch_samples,
                       ch_options.map { options -> options.personalize })

    // Gather per loci chunk. groupKey carries the number of parts, so a loci chunk is merged as soon as its own
    // parts are done instead of waiting for the whole scatter. Parts sorted by name, with their plan.
    ch_parts = ENPACT_PERSONALIZE.out.h5
        .map { meta, h5 -> [ groupKey(meta.subMap('id', 'n_loci_chunks'), meta.n_parts), h5 ] }
        .groupTuple()
        .map { key, h5s -> [ key.getGroupTarget(), h5s.toSorted { h5 -> h5.name } ] }
        .join(ENPACT_PLAN.out.plan.map { meta, plan, _parts -> [ meta, plan ] })

    ENPACT_MERGE(ch_parts)

    emit:
    plans  = ENPACT_PLAN.out.plan          // channel: [ val(meta: id, n_loci_chunks), path(<loci chunk>.h5), path(<loci chunk>.parts) ]
    pieces = ENPACT_PERSONALIZE.out.h5     // channel: [ val(meta: id, n_loci_chunks, part, n_parts), path(<loci chunk>.partNNNN.h5) ]
    h5     = ENPACT_MERGE.out.h5           // channel: [ val(meta: id, n_loci_chunks), path(<loci chunk>.h5) ]
}
