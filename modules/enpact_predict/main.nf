// Reference features of one loci chunk: the sequence predictor on each locus' reference window.
// GPU step (label process_gpu): with -profile gpu / --use_gpu it gets one GPU, the GPU image and
// `--device cuda` (in its options: enpact.steps.nextflow_params); otherwise the same command runs on CPU (`--device`
// from params.device).
process ENPACT_PREDICT {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(loci)                                   // one loci chunk
    tuple val(meta2), path(fasta), path(fai)
    tuple val(weights_id), path(weights_dir, stageAs: 'weights/*')  // Hugging Face id and [], or '' and a checkpoint dir
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python
    tuple val("${task.process}"), val('torch'), eval('enpact --version-of torch'), topic: versions, emit: versions_torch

    script:
    def args    = task.ext.args ?: ''
    prefix      = task.ext.prefix ?: "${meta.id}"
    def weights = weights_dir ? "--weights ${weights_dir}" : weights_id ? "--weights ${weights_id}" : ''   // none: the predictor's default
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact predict \\
        --fasta ${fasta} \\
        --loci ${loci} \\
        ${weights} \\
        ${options} \\
        ${args} \\
        --no-progress \\
        --out ${prefix}.h5
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    """
}
