// The loci to personalize: those whose window holds a GWAS signal, a credible-set variant or overlaps a region
// (only with lin_gwas_pvalue, select_variants or select_regions); the reference pass and training keep every locus.
process ENPACT_SELECT {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(loci), path(features)   // loci table (the union with contexts), reference feature store (its predictor window)
    tuple val(meta2), path(gwas)                  // GWAS for the p-value threshold ([] without)
    tuple val(meta3), path(credible_sets)         // fine-mapped variants ([] without)
    tuple val(meta4), path(regions)               // BED regions ([] without)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.tsv"), emit: loci
    tuple val(meta), path("selected/*.tsv"), emit: chunks
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args     = task.ext.args ?: ''
    prefix       = task.ext.prefix ?: 'selected'
    def inputs   = [ gwas: gwas, 'credible-sets': credible_sets, regions: regions ]
        .findAll { _name, value -> value }
        .collect { name, value -> "--${name} ${value}" }
        .join(' ')
    """
    enpact select \\
        --loci ${loci} \\
        --features ${features} \\
        ${inputs} \\
        ${options} \\
        ${args} \\
        --chunks selected \\
        --out ${prefix}.tsv
    """

    stub:
    prefix = task.ext.prefix ?: 'selected'
    """
    mkdir -p selected
    printf 'locus_id\\tchrom\\tcenter\\tname\\tsplit\\tselected_by\\n' > ${prefix}.tsv
    printf 'locus_id\\tchrom\\tcenter\\tname\\tsplit\\tselected_by\\n' > selected/L1--L2.tsv
    """
}
