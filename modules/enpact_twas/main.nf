// S-PrediXcan of one GWAS file against the EnPACT database (MetaXcan SPrediXcan.py output columns).
// `enpact twas` names the outputs after the GWAS file ({gwas}: the name without .gz/.tsv/.txt/.csv), the
// same rule `enpact run` uses; they are written under twas/ so that no output can replace a staged input.
process ENPACT_TWAS {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(gwas)                     // GWAS summary statistics (with contexts: every GWAS file, one task per context)
    tuple val(meta2), path(db), path(covariance)    // NAME.db, NAME.txt.gz (meta2.context: the context of a run of several)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${folder}/*.csv")          , emit: csv
    tuple val(meta), path("${folder}/*.qq.png")       , emit: qq       , optional: true
    tuple val(meta), path("${folder}/*.manhattan.png"), emit: manhattan, optional: true
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args  = task.ext.args ?: ''
    folder    = meta2.context ? "twas/${meta2.context}" : 'twas'
    def files = gwas.toString().tokenize(' ')   // staged names, blank-separated when several
    """
    enpact twas \\
        --model-db-path ${db} \\
        --covariance ${covariance} \\
        --gwas-file ${files.join(' ')} \\
        ${options} \\
        ${args} \\
        --out '${folder}/{gwas}.csv' \\
        --plots-prefix '${folder}/{gwas}'
    """

    stub:
    folder    = meta2.context ? "twas/${meta2.context}" : 'twas'
    def names = gwas.toString().tokenize(' ').collect { file -> file.tokenize('/').last().tokenize('.')[0] }   // stand-in names only; real runs take them from `enpact twas`
    def lines = names.collect { name -> "echo 'gene,gene_name,zscore,effect_size,pvalue,var_g,pred_perf_r2,pred_perf_pval,pred_perf_qval,n_snps_used,n_snps_in_cov,n_snps_in_model' > ${folder}/${name}.csv && touch ${folder}/${name}.qq.png ${folder}/${name}.manhattan.png" }
    """
    mkdir -p ${folder}
    ${lines.join('\n    ')}
    """
}
