// One locus per feature of the training matrix: TSS (genes) or midpoint (peaks), with its chromosome split.
process ENPACT_LOCI {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(annotation), path(expression)  // annotation (GTF/GFF3/TSV/BED; [] with annotation_format names), training matrix
    tuple val(meta2), path(fasta), path(fai)             // reference FASTA and its .fai ([] if absent)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.tsv")        , emit: loci
    tuple val(meta), path("${prefix}.dropped.tsv"), emit: dropped, optional: true
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args           = task.ext.args ?: ''
    prefix             = task.ext.prefix ?: "${meta.id}"
    def annotation_opt = annotation ? "--annotation ${annotation}" : ''
    // a context row's own annotation format (contexts sample sheet): after the options, so it wins
    def format_opt     = meta.annotation_format ? "--annotation-format ${meta.annotation_format}" : ''
    """
    enpact loci \\
        ${annotation_opt} \\
        --expression ${expression} \\
        --fasta ${fasta} \\
        ${options} \\
        ${format_opt} \\
        ${args} \\
        --out ${prefix}.tsv
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    printf 'locus_id\\tchrom\\tcenter\\tname\\tsplit\\n' > ${prefix}.tsv
    printf 'feature\\treason\\n' > ${prefix}.dropped.tsv
    """
}
