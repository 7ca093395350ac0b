// The SNP covariance of the model SNPs of one or more databases (per gene, their union) across the individuals of a
// panel VCF: a reference panel's covariance for S-PrediXcan (covariance_vcf), or the joint covariance S-MultiXcan
// reads across the contexts' databases.
process ENPACT_COVARIANCE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(databases, stageAs: 'databases/*')   // PredictDB databases (.db)
    tuple val(meta2), path(vcf), path(tbi)                      // panel VCF/BCF, indexed
    tuple val(meta3), path(samples)                             // its individuals to use ([] for all)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}"), emit: covariance
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args        = task.ext.args ?: ''
    prefix          = task.ext.prefix ?: "${meta.id}.txt.gz"
    def dbs         = databases.toString().tokenize(' ')   // staged names, blank-separated when several
    def samples_opt = samples ? "--samples-file ${samples}" : ''
    """
    enpact covariance \\
        --model-db-path ${dbs.join(' ')} \\
        --vcf ${vcf} \\
        ${samples_opt} \\
        ${options} \\
        ${args} \\
        --out ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.txt.gz"
    """
    mkdir -p \$(dirname ${prefix})
    echo 'GENE RSID1 RSID2 VALUE' | gzip > ${prefix}
    """
}
