// PredictDB databases (NAME.db) and SNP covariance files (NAME.txt.gz) from all linearized chunks.
process ENPACT_DATABASE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(linearized, stageAs: 'chunks/*')   // PREFIX.{summary.tsv,weights.tsv,covariance.tsv.gz} of every chunk

    output:
    tuple val(meta), path("${outdir}/${prefix}.db"), path("${outdir}/${prefix}.txt.gz")                        , emit: db
    tuple val(meta), path("${outdir}/${prefix}.summary.tsv")                                                   , emit: summary
    tuple val(meta), path("${outdir}/${prefix}.unfiltered.db"), path("${outdir}/${prefix}.unfiltered.txt.gz")  , emit: unfiltered, optional: true
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args     = task.ext.args ?: ''
    prefix       = task.ext.prefix ?: "${meta.id}"
    outdir       = 'linearized'
    // chunk prefixes, sorted: the database rows follow this order
    def prefixes = linearized.toString().tokenize(' ')
        .findAll { name -> name.endsWith('.summary.tsv') }
        .collect { name -> name[0..<(name.length() - '.summary.tsv'.length())] }
        .sort()
    """
    enpact database \\
        --linearized ${prefixes.join(' ')} \\
        --name ${prefix} \\
        --outdir ${outdir} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    outdir = 'linearized'
    """
    mkdir -p ${outdir}
    touch ${outdir}/${prefix}.db ${outdir}/${prefix}.summary.tsv
    echo -n | gzip > ${outdir}/${prefix}.txt.gz
    """
}
