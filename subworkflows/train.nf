/*
    TRAIN: fit the EnPACT model on the train chromosomes and evaluate it on the held-out ones
*/

include { ENPACT_TRAIN    } from '../modules/enpact_train/main'
include { ENPACT_EVALUATE } from '../modules/enpact_evaluate/main'

workflow TRAIN {

    take:
    ch_features     // channel: [ val(meta), path(reference.h5), path(loci.tsv) ]
    ch_expression   // channel: [ val(meta), path(expression.tsv) ] (value)

    main:
    ch_versions = channel.empty()

    ENPACT_TRAIN(ch_features, ch_expression)
    ch_versions = ch_versions.mix(ENPACT_TRAIN.out.versions.first())

    ENPACT_EVALUATE(
        ENPACT_TRAIN.out.model
            .join(ch_features)
            .map { meta, model, features, loci -> [meta, model, features, loci] },
        ch_expression
    )
    ch_versions = ch_versions.mix(ENPACT_EVALUATE.out.versions.first())

    emit:
    model      = ENPACT_TRAIN.out.model            // channel: [ val(meta), path(model/) ]
    files      = ENPACT_TRAIN.out.files            // channel: [ val(meta), [ path(model/*) ] ]
    metrics    = ENPACT_TRAIN.out.metrics          // channel: [ val(meta), path(model/metrics.json) ]
    evaluation = ENPACT_EVALUATE.out.evaluation    // channel: [ val(meta), path(evaluation/) ]
    versions   = ch_versions                       // channel: [ path(versions.yml) ]
}
