// S-PrediXcan of one GWAS file against the EnPACT database (MetaXcan SPrediXcan.py output columns).
process ENPACT_TWAS {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(gwas)                     // GWAS summary statistics
    tuple val(meta2), path(db), path(covariance)    // NAME.db, NAME.txt.gz

    output:
    tuple val(meta), path("${prefix}.csv")          , emit: csv
    tuple val(meta), path("${prefix}.qq.png")       , emit: qq       , optional: true
    tuple val(meta), path("${prefix}.manhattan.png"), emit: manhattan, optional: true
    path "versions.yml"                             , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    enpact twas \\
        --model-db-path ${db} \\
        --covariance ${covariance} \\
        --gwas-file ${gwas} \\
        ${args} \\
        --output-file ${prefix}.csv \\
        --plots-prefix ${prefix}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo 'gene,gene_name,zscore,effect_size,pvalue,var_g,pred_perf_r2,pred_perf_pval,pred_perf_qval,n_snps_used,n_snps_in_cov,n_snps_in_model' > ${prefix}.csv
    touch ${prefix}.qq.png ${prefix}.manhattan.png

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """
}
