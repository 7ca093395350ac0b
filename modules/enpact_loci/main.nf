// One locus per feature of the training matrix: TSS (genes) or midpoint (peaks), with its chromosome split.
process ENPACT_LOCI {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(annotation), path(expression)  // annotation (GTF/GFF3/TSV/BED), training matrix
    tuple val(meta2), path(fasta), path(fai)             // reference FASTA and its .fai ([] if absent)

    output:
    tuple val(meta), path("${prefix}.tsv")        , emit: loci
    tuple val(meta), path("${prefix}.dropped.tsv"), emit: dropped, optional: true
    path "versions.yml"                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    enpact loci \\
        --annotation ${annotation} \\
        --expression ${expression} \\
        --fasta ${fasta} \\
        ${args} \\
        --out ${prefix}.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    printf 'locus_id\\tchrom\\tcenter\\tname\\tsplit\\n' > ${prefix}.tsv
    printf 'feature\\treason\\n' > ${prefix}.dropped.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """
}
