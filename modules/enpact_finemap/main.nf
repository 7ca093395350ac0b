// Fine-mapping of the regions of S-PrediXcan results (FOCUS's model): per gene its posterior inclusion probability
// and credible-set membership, from the z-scores and the correlation of predicted expression across the LD panel.
// `enpact finemap` names the tables after the results ({gwas}), the rule `enpact run` uses.
process ENPACT_FINEMAP {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(twas, stageAs: 'twas/*')   // S-PrediXcan results CSV(s) of one TWAS task
    tuple val(meta2), path(db)                       // NAME.db they come from (meta2.context: the context of a run of several)
    tuple val(meta3), path(vcf), path(tbi)           // LD panel VCF/BCF, indexed (covariance_vcf, else the linearization VCF)
    tuple val(meta4), path(samples)                  // its individuals to use ([] for all)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${folder}/*.tsv"), emit: tsv
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args        = task.ext.args ?: ''
    folder          = meta2.context ? "finemap/${meta2.context}" : 'finemap'
    def tables      = twas.toString().tokenize(' ')   // staged names, blank-separated when several
    def samples_opt = samples ? "--samples-file ${samples}" : ''
    """
    enpact finemap \\
        --twas ${tables.join(' ')} \\
        --model-db-path ${db} \\
        --vcf ${vcf} \\
        ${samples_opt} \\
        ${options} \\
        ${args} \\
        --out '${folder}/{gwas}.tsv'
    """

    stub:
    folder    = meta2.context ? "finemap/${meta2.context}" : 'finemap'
    def names = twas.toString().tokenize(' ').collect { file -> file.tokenize('/').last().tokenize('.')[0] }   // stand-in names only; real runs take them from `enpact finemap`
    def lines = names.collect { name -> "printf 'region\\tgene\\tgene_name\\tchrom\\tposition\\tzscore\\tpvalue\\tpip\\tin_credible_set\\tcredible_set_size\\tnull_pip\\tnull_in_credible_set\\tn_genes\\n' > ${folder}/${name}.tsv" }
    """
    mkdir -p ${folder}
    ${lines.join('\n    ')}
    """
}
