// Reference features of one loci chunk: the sequence predictor on each locus' reference window.
// GPU step: with --use_gpu / -profile gpu (conf/base.config, label process_gpu) it gets one GPU, the GPU
// image and --device cuda; otherwise it runs the same command on CPU.
process ENPACT_PREDICT {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(loci)                      // one loci chunk
    tuple val(meta2), path(fasta), path(fai)
    tuple val(weights_id), path(weights_dir)         // Hugging Face id and [], or '' and a local checkpoint dir

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    path "versions.yml"                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args    = task.ext.args ?: ''
    prefix      = task.ext.prefix ?: "${meta.id}"
    def device  = task.ext.use_gpu ? 'cuda' : 'cpu'
    def weights = weights_dir ? "${weights_dir}" : "${weights_id}"
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact predict \\
        --fasta ${fasta} \\
        --loci ${loci} \\
        --weights ${weights} \\
        --device ${device} \\
        ${args} \\
        --no-progress \\
        --out ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
        torch: \$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)
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
        torch: \$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)
    END_VERSIONS
    """
}
