// Per locus of one chunk: an elastic net across individuals from variant dosages (inside the predictor
// window) to the personalized EnPACT value; weights, fit summary and SNP covariances in one chunk file (HDF5).
process ENPACT_LINEARIZE {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(personalized), path(loci)   // merged personalized store and loci of one chunk
    tuple val(meta2), path(vcf), path(tbi)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.h5"), emit: linearized
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args     = task.ext.args ?: ''
    prefix       = task.ext.prefix ?: "${meta.id}"
    def context  = meta.context ? "--context ${meta.context}" : ''
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact linearize \\
        --personalized ${personalized} \\
        --vcf ${vcf} \\
        --loci ${loci} \\
        ${context} \\
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
