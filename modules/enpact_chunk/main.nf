// Loci into chunks of loci_per_chunk (its options). File names come from content (<first>--<last>.tsv), so a re-run
// with the same inputs and chunk size gives the same names and -resume keeps every finished downstream task.
process ENPACT_CHUNK {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(loci)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}/loci/*.tsv"), emit: loci
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    enpact chunk \\
        --loci ${loci} \\
        ${options} \\
        ${args} \\
        --outdir ${prefix}/loci
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}/loci
    touch ${prefix}/loci/L001--L050.tsv ${prefix}/loci/L051--L090.tsv
    """
}
