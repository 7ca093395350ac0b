/*
    TRAIN: fit the EnPACT model on the train chromosomes; `enpact train` also evaluates it on the valid and
    test chromosomes (metrics.json, predictions.tsv and plots in the model directory), as `enpact run` does
*/

include { ENPACT_TRAIN } from '../modules/enpact_train/main'

workflow TRAIN {

    take:
    ch_features     // channel: [ val(meta), path(reference.h5), path(loci.tsv) ]
    ch_expression   // channel: [ val(meta), path(expression.tsv) ] (value)

    main:
    ENPACT_TRAIN(ch_features, ch_expression)

    emit:
    model   = ENPACT_TRAIN.out.model     // channel: [ val(meta), path(model/) ]
    files   = ENPACT_TRAIN.out.files     // channel: [ val(meta), [ path(model/*) ] ]
    metrics = ENPACT_TRAIN.out.metrics   // channel: [ val(meta), path(model/metrics.json) ]
}
