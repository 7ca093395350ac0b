// The contexts' loci tables as one, with the contexts that use each locus (one predictor pass then serves them all).
process ENPACT_LOCI_UNION {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(loci, stageAs: 'contexts/?/*')   // one loci table per context, in the order of meta.contexts

    output:
    tuple val(meta), path("${prefix}.tsv"), emit: loci
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args   = task.ext.args ?: ''
    prefix     = task.ext.prefix ?: "${meta.id}"
    def tables = loci.toString().tokenize(' ')   // staged names, blank-separated when several
    """
    enpact loci-union \\
        --loci ${tables.join(' ')} \\
        --contexts '${meta.contexts.join(',')}' \\
        ${args} \\
        --out ${prefix}.tsv
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    printf 'locus_id\\tchrom\\tcenter\\tname\\tsplit\\tcontexts\\n' > ${prefix}.tsv
    """
}
