// The HTML report (training fit, personalized accuracy, linearization fit, TWAS QQ/Manhattan plots) and
// report/summary.json, rendered from the tables of the other steps, staged in the results layout that
// `enpact report` reads (enpact.layout.ResultsLayout).
process ENPACT_REPORT {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(params_json, stageAs: 'pipeline_info/params.json'), path(truth)   // ENPACT_CHECK's params.json, truth table or []
    path(model, stageAs: 'model/*')                  // files of the model directory (with contexts: the model directories, named after their context)
    path(accuracy, stageAs: 'accuracy/*')            // personalized_accuracy.tsv, personalized.json (ENPACT_ACCURACY; with contexts: its folders)
    path(databases, stageAs: 'linearized/*')         // NAME.db, NAME.txt.gz, NAME.summary.tsv (every context's)
    path(twas, stageAs: 'twas/*')                    // TWAS CSVs and plots ([] without GWAS; with contexts: the folders twas/<context>/)
    path(multixcan, stageAs: 'multixcan/*')          // S-MultiXcan tables and QQ plots ([] without contexts or GWAS)
    path(finemap, stageAs: 'finemap/*')              // fine-mapping tables ([] without GWAS; with contexts: the folders finemap/<context>/)

    output:
    tuple val(meta), path("report/*")             , emit: report   // the files, each published on its own
    tuple val(meta), path("report/index.html")    , emit: html
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args      = task.ext.args ?: ''
    def truth_opt = truth ? "--truth-causal-genes ${truth}" : ''
    """
    enpact report \\
        ${truth_opt} \\
        ${args} \\
        --outdir .
    """

    stub:
    """
    mkdir -p report
    echo '<!DOCTYPE html><html><body>EnPACT report (stub)</body></html>' > report/index.html
    echo '{}' > report/summary.json
    touch report/personalized_accuracy.png report/linearization_fit.png
    """
}
