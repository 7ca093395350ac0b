// The HTML report (training fit, personalized accuracy, linearization fit, TWAS QQ/Manhattan plots) and
// report/summary.json. The inputs are staged in the results layout that `enpact report` reads.
process ENPACT_REPORT {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(params_json, stageAs: 'pipeline_info/params.json'), path(expression), path(truth)   // ENPACT_CHECK's params.json, training matrix, truth table or []
    path(model, stageAs: 'model/*')                  // files of the model directory
    path(personalized, stageAs: 'personalized/*')    // merged personalized stores ([] when not kept)
    path(databases, stageAs: 'linearized/*')         // NAME.db, NAME.txt.gz, NAME.summary.tsv
    path(twas, stageAs: 'twas/*')                    // TWAS CSVs and plots ([] without GWAS)

    output:
    tuple val(meta), path("report", type: 'dir')  , emit: report
    tuple val(meta), path("report/index.html")    , emit: html
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args      = task.ext.args ?: ''
    def truth_opt = truth ? "--truth-causal-genes ${truth}" : ''
    """
    enpact report \\
        --expression ${expression} \\
        ${truth_opt} \\
        ${args} \\
        --outdir .
    """

    stub:
    """
    mkdir -p report
    echo '<!DOCTYPE html><html><body>EnPACT report (stub)</body></html>' > report/index.html
    echo '{}' > report/summary.json
    """
}
