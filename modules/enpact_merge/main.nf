// One personalized store per loci chunk: its plan's parts, each haplotype given its distinct window's value
// (inputs sorted by name).
process ENPACT_MERGE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(stores, stageAs: 'chunks/*'), path(plan)   // the parts of the plan, and the plan

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args   = task.ext.args ?: ''
    prefix     = task.ext.prefix ?: "${meta.id}"
    def inputs = stores.toString().tokenize(' ').sort()   // staged names (blank-separated when several)
    """
    enpact merge \\
        --plan ${plan} \\
        --inputs ${inputs.join(' ')} \\
        ${args} \\
        --out ${prefix}.h5
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    """
}
