// Loci into chunks of params.loci_per_chunk and samples into chunks of params.samples_per_chunk (ext.args).
// File names come from content (<first>--<last>.tsv / .txt), so a re-run with the same inputs and chunk
// sizes gives the same names and -resume keeps every finished downstream task.
process ENPACT_CHUNK {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(loci)
    tuple val(meta2), path(vcf), path(tbi)  // phased VCF: the samples are read from its header
    tuple val(meta3), path(samples)         // optional file of sample ids ([]: all VCF samples)

    output:
    tuple val(meta), path("${prefix}/loci/*.tsv")   , emit: loci
    tuple val(meta), path("${prefix}/samples/*.txt"), emit: samples
    tuple val("${task.process}"), val('enpact'), eval('enpact --version-of enpact'), topic: versions, emit: versions_enpact
    tuple val("${task.process}"), val('python'), eval('enpact --version-of python'), topic: versions, emit: versions_python

    script:
    def args        = task.ext.args ?: ''
    prefix          = task.ext.prefix ?: "${meta.id}"
    def samples_opt = samples ? "--samples-file ${samples}" : "--vcf ${vcf}"
    """
    enpact chunk \\
        --loci ${loci} \\
        ${samples_opt} \\
        ${args} \\
        --outdir ${prefix}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}/loci ${prefix}/samples
    touch ${prefix}/loci/L001--L050.tsv ${prefix}/loci/L051--L090.tsv
    touch ${prefix}/samples/S001--S040.txt ${prefix}/samples/S041--S080.txt
    """
}
