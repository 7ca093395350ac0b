// PredictDB databases (NAME.db) and SNP covariance files (NAME.txt.gz) from all linearized chunks.
process ENPACT_DATABASE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(linearized, stageAs: 'chunks/*')   // the linearization chunk (.h5) of every loci chunk
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

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
    // chunks, sorted by name (staged names, blank-separated when several)
    def chunks   = linearized.toString().tokenize(' ').sort()
    """
    enpact database \\
        --linearized ${chunks.join(' ')} \\
        --name ${prefix} \\
        --outdir ${outdir} \\
        ${options} \\
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
