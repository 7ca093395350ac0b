// One personalized store per loci chunk: merge the stores of its sample chunks (inputs sorted by name).
process ENPACT_MERGE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(stores, stageAs: 'chunks/*')

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    path "versions.yml"                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args   = task.ext.args ?: ''
    prefix     = task.ext.prefix ?: "${meta.id}"
    def inputs = stores.toString().tokenize(' ').sort()   // staged names (blank-separated when several)
    """
    enpact merge \\
        --inputs ${inputs.join(' ')} \\
        ${args} \\
        --out ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """
}
