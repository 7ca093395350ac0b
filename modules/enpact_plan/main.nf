// The distinct haplotype windows of one loci chunk over every individual (identities from the genotypes, no
// sequence built), split into parts of at most windows_per_part for the predictor tasks: the predictor then runs
// once per distinct window, whatever the chunk sizes.
process ENPACT_PLAN {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(loci)                   // loci chunk
    tuple val(meta2), path(fasta), path(fai)
    tuple val(meta3), path(vcf), path(tbi)        // phased, indexed VCF/BCF
    tuple val(meta4), path(samples)               // the individuals ([] = all VCF samples)
    tuple val(meta5), path(features)              // reference feature store (its predictor window)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.h5"), path("${prefix}.parts"), emit: plan
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args        = task.ext.args ?: ''
    prefix          = task.ext.prefix ?: "${meta.id}"
    def samples_opt = samples ? "--samples-file ${samples} --panel-samples-file ${samples}" : ''
    """
    enpact plan \\
        --fasta ${fasta} \\
        --loci ${loci} \\
        --vcf ${vcf} \\
        ${samples_opt} \\
        --features ${features} \\
        ${options} \\
        ${args} \\
        --parts-file ${prefix}.parts \\
        --out ${prefix}.h5
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    echo 1 > ${prefix}.parts
    """
}
