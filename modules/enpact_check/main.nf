// The parameters of the run, checked by the same code as `enpact run --params` (cross-parameter rules, GWAS
// output names), with schema defaults filled in: pipeline_info/params.json. Every other task waits for it.
process ENPACT_CHECK {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(nextflow_params)   // the run's params as JSON (command-line values may be strings)

    output:
    tuple val(meta), path("pipeline_info/params.json"), emit: params_json
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args = task.ext.args ?: ''
    """
    enpact check \\
        --params ${nextflow_params} \\
        ${args} \\
        --out pipeline_info/params.json
    """

    stub:
    """
    mkdir -p pipeline_info
    cp ${nextflow_params} pipeline_info/params.json
    """
}
