// Personalized accuracy: per gene, the merged personalized stores against the observed training matrix across the
// shared individuals (one-sided permutation test). The report renders the table; it runs no analysis itself.
process ENPACT_ACCURACY {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(stores, stageAs: 'personalized/*'), path(expression)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    // files, not their folder: the publisher keeps only the outermost of nested outputs (the workflow takes the
    // folder as the files' parent)
    tuple val(meta), path("${prefix}/personalized_accuracy.tsv"), path("${prefix}/personalized.json"), emit: accuracy
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args   = task.ext.args ?: ''
    prefix     = task.ext.prefix ?: 'accuracy'
    def inputs = stores.toString().tokenize(' ').sort()   // staged names (blank-separated when several)
    def context = meta.context ? "--context ${meta.context}" : ''
    """
    enpact accuracy \\
        --personalized ${inputs.join(' ')} \\
        --expression ${expression} \\
        ${context} \\
        ${options} \\
        ${args} \\
        --outdir ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: 'accuracy'
    """
    mkdir -p ${prefix}
    printf 'gene\\tr\\tp_positive\\tp_negative\\tnull_sd\\tnull_r\\tpredicted_sd\\tobserved_sd\\n' > ${prefix}/personalized_accuracy.tsv
    echo '{}' > ${prefix}/personalized.json
    """
}
