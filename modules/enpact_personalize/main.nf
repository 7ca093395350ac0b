// Personalized EnPACT predictions for one part of a loci chunk's plan (ENPACT_PLAN: the chunk's distinct haplotype
// windows over every individual): each distinct window once through the sequence predictor and every EnPACT model;
// ENPACT_MERGE maps the parts back to every haplotype. GPU step (label process_gpu): see ENPACT_PREDICT.
process ENPACT_PERSONALIZE {
    tag "${meta.id} part ${meta.part}"
    label 'process_gpu'

    input:
    tuple val(meta), path(loci), path(plan)                       // loci chunk and its plan (enpact plan); meta.part: the part to predict
    tuple val(meta2), path(fasta), path(fai)
    tuple val(meta3), path(vcf), path(tbi)                        // phased, indexed VCF/BCF
    tuple val(meta4), path(model, stageAs: 'enpact_model/*')      // EnPACT model directory; with contexts one per context (meta4.contexts, each named after its context)
    tuple val(weights_id), path(weights_dir, stageAs: 'weights/*')  // Hugging Face id and [], or '' and a checkpoint dir
    tuple val(meta5), path(panel_samples, stageAs: 'panel/*')     // the linearization panel's individuals ([] = all VCF samples)
    val(options)   // this step's options from the run's parameters, written by ENPACT_CHECK from the step's configuration

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python
    tuple val("${task.process}"), val('torch'), eval('enpact --version-of torch'), topic: versions, emit: versions_torch

    script:
    def args    = task.ext.args ?: ''
    prefix      = task.ext.prefix ?: "${meta.id}.part${meta.part}"
    def weights = weights_dir ? "--weights ${weights_dir}" : weights_id ? "--weights ${weights_id}" : ''   // none: the predictor's default
    // contexts: one predictor pass, every context's model applied to the loci the context uses
    def panel   = panel_samples ? "--panel-samples-file ${panel_samples}" : ''
    def models  = meta4.contexts ? meta4.contexts.collect { name -> "${name}=enpact_model/${name}" }.join(' ') : "${model}"
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact personalize \\
        --fasta ${fasta} \\
        --loci ${loci} \\
        --vcf ${vcf} \\
        --plan ${plan} \\
        --part ${meta.part} \\
        --model ${models} \\
        ${weights} \\
        ${panel} \\
        ${options} \\
        ${args} \\
        --no-progress \\
        --out ${prefix}.h5
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.part${meta.part}"
    """
    touch ${prefix}.h5
    """
}
