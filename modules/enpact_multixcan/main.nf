// S-MultiXcan of one GWAS across the contexts (MetaXcan SMulTiXcan.py's method and columns): each context's
// database and S-PrediXcan results, and the joint SNP covariance of their models. `enpact multixcan` names the
// outputs after the GWAS file ({gwas}), the rule `enpact twas` and `enpact run` use.
process ENPACT_MULTIXCAN {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(gwas)                                  // GWAS summary statistics
    tuple val(meta2), path(databases, stageAs: 'databases/*'), path(twas, stageAs: 'twas/*'), path(covariance)
                                                                 // meta2.contexts: names in order; databases, S-PrediXcan folders (twas/<context>/) in that order; joint covariance
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("multixcan/*.tsv")   , emit: tsv
    tuple val(meta), path("multixcan/*.qq.png"), emit: qq, optional: true
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args     = task.ext.args ?: ''
    def dbs      = databases.toString().tokenize(' ')   // staged names, blank-separated when several
    def contexts = meta2.contexts.withIndex().collect { name, i -> "--context ${name} ${dbs[i]} 'twas/${name}/{gwas}.csv'" }
    """
    enpact multixcan \\
        ${contexts.join(' ')} \\
        --snp-covariance ${covariance} \\
        --gwas-file ${gwas} \\
        ${options} \\
        ${args} \\
        --out 'multixcan/{gwas}.tsv' \\
        --qq-plot 'multixcan/{gwas}.qq.png'
    """

    stub:
    def name = gwas.simpleName   // stand-in names only; real runs take them from `enpact multixcan`
    """
    mkdir -p multixcan
    printf 'gene\\tgene_name\\tpvalue\\tn\\tn_indep\\tp_i_best\\tt_i_best\\tp_i_worst\\tt_i_worst\\teigen_max\\teigen_min\\teigen_min_kept\\tz_min\\tz_max\\tz_mean\\tz_sd\\ttmi\\tstatus\\n' > multixcan/${name}.tsv
    touch multixcan/${name}.qq.png
    """
}
