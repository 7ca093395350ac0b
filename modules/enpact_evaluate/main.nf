// Evaluate the trained EnPACT model (held-out chromosomes, single-track baseline): metrics.json and plots.
process ENPACT_EVALUATE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(model), path(features), path(loci)
    tuple val(meta2), path(expression)

    output:
    tuple val(meta), path("${prefix}", type: 'dir')  , emit: evaluation
    tuple val(meta), path("${prefix}/metrics.json")  , emit: metrics
    path "versions.yml"                              , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact evaluate \\
        --model ${model} \\
        --features ${features} \\
        --loci ${loci} \\
        --expression ${expression} \\
        ${args} \\
        --outdir ${prefix}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    echo '{}' > ${prefix}/metrics.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """
}
