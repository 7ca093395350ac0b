// Fit the EnPACT model (reference features -> mean feature level) on the train chromosomes; the command
// also evaluates it on the valid and test chromosomes (metrics.json, plots, predictions.tsv).
process ENPACT_TRAIN {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(features), path(loci), path(expression)   // merged reference feature store, the context's loci table and training matrix
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    // the files of the model directory, not the directory: the publisher keeps only the outermost of nested outputs,
    // and each file is published (and listed to Seqera Platform) on its own; TRAIN emits the directory itself
    tuple val(meta), path("${prefix}/*")              , emit: files
    tuple val(meta), path("${prefix}/metrics.json")   , emit: metrics
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact train \\
        --features ${features} \\
        --loci ${loci} \\
        --expression ${expression} \\
        ${options} \\
        ${args} \\
        --outdir ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    echo '{}' > ${prefix}/model.json
    echo '{}' > ${prefix}/metrics.json
    touch ${prefix}/weights.npz ${prefix}/predictions.tsv ${prefix}/observed_vs_predicted.png ${prefix}/baseline_comparison.png
    """
}
