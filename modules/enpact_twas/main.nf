// S-PrediXcan of one GWAS file against the EnPACT database (MetaXcan SPrediXcan.py output columns).
// `enpact twas` names the outputs after the GWAS file ({gwas}: the name without .gz/.tsv/.txt/.csv), the
// same rule `enpact run` uses; they are written under twas/ so that no output can replace a staged input.
process ENPACT_TWAS {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(gwas)                     // GWAS summary statistics
    tuple val(meta2), path(db), path(covariance)    // NAME.db, NAME.txt.gz

    output:
    tuple val(meta), path("twas/*.csv")          , emit: csv
    tuple val(meta), path("twas/*.qq.png")       , emit: qq       , optional: true
    tuple val(meta), path("twas/*.manhattan.png"), emit: manhattan, optional: true
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args = task.ext.args ?: ''
    """
    enpact twas \\
        --model-db-path ${db} \\
        --covariance ${covariance} \\
        --gwas-file ${gwas} \\
        ${args} \\
        --output-file 'twas/{gwas}.csv' \\
        --plots-prefix 'twas/{gwas}'
    """

    stub:
    def name = gwas.simpleName   // stand-in names only; real runs take them from `enpact twas`
    """
    mkdir -p twas
    echo 'gene,gene_name,zscore,effect_size,pvalue,var_g,pred_perf_r2,pred_perf_pval,pred_perf_qval,n_snps_used,n_snps_in_cov,n_snps_in_model' > twas/${name}.csv
    touch twas/${name}.qq.png twas/${name}.manhattan.png
    """
}
