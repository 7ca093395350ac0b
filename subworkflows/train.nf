/*
    TRAIN: fit one EnPACT model per context on the train chromosomes; `enpact train` also evaluates it on the
    valid and test chromosomes (metrics.json, predictions.tsv and plots in the model directory), as `enpact run`
    does
*/

include { ENPACT_TRAIN } from '../modules/enpact_train/main'

workflow TRAIN {

    take:
    ch_inputs   // channel: [ val(meta: id, context), path(reference.h5), path(the context's loci.tsv), path(its expression.tsv) ], one per context
    ch_options  // channel: val(step name -> options line) (value; ENPACT_CHECK's options/<step>.args)

    main:
    ENPACT_TRAIN(ch_inputs, ch_options.map { options -> options.train })

    emit:
    model   = ENPACT_TRAIN.out.files.map { meta, files -> [ meta, [ files ].flatten()[0].parent ] }   // channel: [ val(meta), path(model/ or model/<context>/) ] (the task's folder of those files)
    files   = ENPACT_TRAIN.out.files     // channel: [ val(meta), [ path(model/*) ] ]
    metrics = ENPACT_TRAIN.out.metrics   // channel: [ val(meta), path(metrics.json) ]
}
