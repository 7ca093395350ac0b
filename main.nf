#!/usr/bin/env nextflow
/*
========================================================================================
    EnPACT: sequence-model predictions -> EnPACT models -> PredictDB databases -> TWAS
========================================================================================
    Docs: docs/nextflow.md (how to run), docs/cli-contract.md (steps and parameters),
    docs/scale.md (jobs, GPU-hours and storage for a study).
    This file only validates parameters and turns them into input channels; the DAG is
    in workflows/enpact.nf.
----------------------------------------------------------------------------------------
*/

include { validateParameters; paramsSummaryLog } from 'plugin/nf-schema'
include { ENPACT                               } from './workflows/enpact'

/*
    Helpers: input files as channel values
*/

// The tabix (.tbi) or CSI (.csi) index next to the VCF/BCF: pysam needs one to read regions
def vcfIndex(vcf) {
    def index = [ file("${vcf}.tbi"), file("${vcf}.csi") ].find { f -> f.exists() }
    if (!index) {
        error("EnPACT: no index for --vcf ${vcf}: create one with `tabix -p vcf ${vcf}` or `bcftools index ${vcf}`")
    }
    return index
}

// .fai (and .gzi for bgzipped FASTA) next to the FASTA; [] when absent (pyfaidx then indexes the staged copy)
def fastaIndex(fasta) {
    return [ file("${fasta}.fai"), file("${fasta}.gzi") ].findAll { f -> f.exists() }
}

// Output stem of a GWAS file, as `enpact run` names it: the file name without .gz/.bgz and .tsv/.txt/.csv
def gwasName(path) {
    def name = file(path).name
    ['.gz', '.bgz', '.tsv', '.txt', '.csv'].each { suffix ->
        if (name.endsWith(suffix)) {
            name = name.substring(0, name.length() - suffix.length())
        }
    }
    return name
}

// Predictor weights: a local (or object-storage) checkpoint directory is staged into the tasks;
// anything else is a Hugging Face model id, downloaded by each task (see docs/nextflow.md, offline use)
def weightsInput(weights) {
    def is_path = weights.contains('://') || weights.startsWith('/') || weights.startsWith('.') || file(weights).exists()
    return is_path ? [ '', file(weights, checkIfExists: true) ] : [ weights, [] ]
}

workflow {

    if (params.validate_params) {
        validateParameters()
    }
    log.info(paramsSummaryLog(workflow))

    ['fasta', 'annotation', 'expression', 'vcf'].each { name ->
        if (!params[name]) {
            error("EnPACT: --${name} is required (or run -profile test for the bundled demo data); see docs/nextflow.md")
        }
    }
    def gwas_files = params.gwas ? params.gwas.toString().tokenize(',').collect { path -> path.trim() }.findAll { path -> path } : []
    if (params.lin_gwas_pvalue != null && !gwas_files) {
        error("EnPACT: --lin_gwas_pvalue selects loci near GWAS signals and needs --gwas")
    }

    def fasta      = file(params.fasta, checkIfExists: true)
    def annotation = file(params.annotation, checkIfExists: true)
    def expression = file(params.expression, checkIfExists: true)
    def vcf        = file(params.vcf, checkIfExists: true)

    ch_fasta       = channel.value([ [id: fasta.baseName], fasta, fastaIndex(params.fasta) ])
    ch_annotation  = channel.value([ [id: 'loci'], annotation ])
    ch_expression  = channel.value([ [id: expression.baseName], expression ])
    ch_vcf         = channel.value([ [id: vcf.simpleName], vcf, vcfIndex(params.vcf) ])
    ch_samples     = channel.value([ [id: 'samples'], params.samples ? file(params.samples, checkIfExists: true) : [] ])
    ch_weights     = channel.value(weightsInput(params.weights.toString()))
    ch_gwas        = channel.fromList(gwas_files.collect { path -> [ [id: gwasName(path)], file(path, checkIfExists: true) ] })
    // linearize only loci near GWAS signals (--lin_gwas_pvalue): the first GWAS file, as `enpact run` does
    ch_gwas_filter = channel.value([ [id: 'gwas_filter'], params.lin_gwas_pvalue != null ? file(gwas_files[0], checkIfExists: true) : [] ])

    ENPACT(
        ch_fasta,
        ch_annotation,
        ch_expression,
        ch_vcf,
        ch_samples,
        ch_weights,
        ch_gwas,
        ch_gwas_filter
    )
}
