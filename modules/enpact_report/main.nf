// The HTML report (training fit, personalized accuracy, linearization fit, TWAS QQ/Manhattan plots) and
// report/summary.json. The inputs are staged in the results layout that `enpact report` reads.
process ENPACT_REPORT {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(params_json, stageAs: 'pipeline_info/params.json'), path(expression)
    path(model, stageAs: 'model/*')                  // files of the model directory
    path(personalized, stageAs: 'personalized/*')    // merged personalized stores ([] when not kept)
    path(databases, stageAs: 'linearized/*')         // NAME.db, NAME.txt.gz, NAME.summary.tsv
    path(twas, stageAs: 'twas/*')                    // TWAS CSVs and plots ([] without GWAS)

    output:
    tuple val(meta), path("report", type: 'dir')  , emit: report
    tuple val(meta), path("report/index.html")    , emit: html
    path "versions.yml"                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    enpact report \\
        ${args} \\
        --outdir .

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p report
    echo '<!DOCTYPE html><html><body>EnPACT report (stub)</body></html>' > report/index.html
    echo '{}' > report/summary.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
    END_VERSIONS
    """
}
