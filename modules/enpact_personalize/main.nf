// Personalized EnPACT predictions for one loci chunk x one sample chunk: both haplotype windows of every
// individual through the sequence predictor (identical windows once) and the EnPACT model.
// GPU step (label process_gpu): see ENPACT_PREDICT.
process ENPACT_PERSONALIZE {
    tag "${meta.id} x ${meta.samples}"
    label 'process_gpu'

    input:
    tuple val(meta), path(loci), path(samples)   // loci chunk, sample chunk
    tuple val(meta2), path(fasta), path(fai)
    tuple val(meta3), path(vcf), path(tbi)       // phased, indexed VCF/BCF
    tuple val(meta4), path(model)                // EnPACT model directory
    tuple val(weights_id), path(weights_dir)     // Hugging Face id and [], or '' and a local checkpoint dir

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    path "versions.yml"                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args    = task.ext.args ?: ''
    prefix      = task.ext.prefix ?: "${meta.id}.${meta.samples}"
    def device  = task.ext.use_gpu ? 'cuda' : 'cpu'
    def weights = weights_dir ? "${weights_dir}" : "${weights_id}"
    """
    export OMP_NUM_THREADS=${task.cpus}
    enpact personalize \\
        --fasta ${fasta} \\
        --loci ${loci} \\
        --vcf ${vcf} \\
        --samples-file ${samples} \\
        --model ${model} \\
        --weights ${weights} \\
        --device ${device} \\
        ${args} \\
        --no-progress \\
        --out ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
        torch: \$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)
    END_VERSIONS
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.${meta.samples}"
    """
    touch ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        enpact: \$(enpact --version 2>/dev/null | sed 's/^enpact //')
        python: \$(python3 --version 2>&1 | sed 's/^Python //')
        torch: \$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)
    END_VERSIONS
    """
}
