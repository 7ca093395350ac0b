// The parameters and input files of the run, checked by the code `enpact run` runs before its first step
// (parameter rules, GWAS output names; genome build, phasing, sample ids, chromosome names, splits, GWAS
// completeness and ids), with schema defaults filled in: pipeline_info/params.json; and each step's options from
// them, one file per step (options/<step>.args: the words of its command line that come from the run's parameters,
// derived from the step's configuration by the code `enpact run` builds its configurations with). Every other task
// waits for it: each receives its own step's options from it.
process ENPACT_CHECK {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(nextflow_params)                   // the run's params as JSON (command-line values may be strings)
    tuple val(meta2), path(fasta), path(fai)
    tuple val(meta3), path(annotation)                       // [] with annotation_format names
    tuple val(meta4), path(expression)
    tuple val(meta5), path(vcf), path(tbi)
    tuple val(meta6), path(samples)                          // [] for all VCF samples
    path(gwas, stageAs: 'gwas/?/*')                          // the GWAS files, in the order of params.gwas ([] without)
    tuple val(meta7), path(contexts), path(context_files, stageAs: 'contexts/?/*')
                                                             // contexts sample sheet and the files it names, in its order ([] without)

    output:
    tuple val(meta), path("pipeline_info/params.json"), emit: params_json
    tuple val(meta), path("options/*.args")           , emit: options   // <step>.args for every step a module runs (not published)
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args  = task.ext.args ?: ''
    // an input whose parameter is unset is [] here; `enpact check` then names the missing parameter
    def files = [ fasta: fasta, annotation: annotation, expression: expression, vcf: vcf, 'samples-file': samples, gwas: gwas,
                  contexts: contexts, 'context-files': context_files ]
        .findAll { _name, value -> value }
        .collect { name, value -> "--${name} ${value}" }
        .join(' ')
    """
    enpact check \\
        --params ${nextflow_params} \\
        ${files} \\
        ${args} \\
        --options-dir options \\
        --out pipeline_info/params.json
    """

    stub:
    // one (empty) options file per step a module runs (enpact.steps.STEPS; tests/test_nextflow_static.py checks the list)
    def steps = [ 'loci', 'loci-union', 'chunk', 'select', 'predict', 'merge-features', 'train', 'plan', 'personalize',
                  'merge', 'accuracy', 'linearize', 'database', 'covariance', 'twas', 'finemap', 'multixcan',
                  'report' ]
    """
    mkdir -p pipeline_info options
    cp ${nextflow_params} pipeline_info/params.json
    touch ${steps.collect { step -> "options/${step}.args" }.join(' ')}
    """
}
