#!/usr/bin/env nextflow
/*
========================================================================================
    EnPACT: sequence-model predictions -> EnPACT models -> PredictDB databases -> TWAS
========================================================================================
    Docs: docs/nextflow.md (how to run), docs/cli-contract.md (steps and parameters),
    docs/scale.md (jobs, GPU-hours and storage for a study).
    The entry workflow is the only place that reads `params`: it validates them against
    nextflow_schema.json, turns input files into channels and hands everything to the
    ENPACT workflow (workflows/enpact.nf). Rules across parameters (required inputs,
    GWAS output names, ...) are not written here: the first task, ENPACT_CHECK, applies
    the same code `enpact run` applies, and every other task waits for it.
----------------------------------------------------------------------------------------
*/

include { paramsHelp; validateParameters; paramsSummaryLog; samplesheetToList } from 'plugin/nf-schema'
include { ENPACT                                                  } from './workflows/enpact'

/*
    Helpers: input files as channel values ([] when a parameter is not set: ENPACT_CHECK reports it)
*/

// A boolean parameter: command-line values arrive as strings under the strict parser (`--validate_params false` is
// the string "false", which Groovy would take for true)
def isTrue(value) {
    return value != null && value.toString().toLowerCase() == 'true'
}

// An input file, checked to exist; [] when the parameter is not set
def inputFile(value) {
    return value ? file(value, checkIfExists: true) : []
}

// The tabix (.tbi) or CSI (.csi) index next to the VCF/BCF: pysam needs one to read regions
def vcfIndex(vcf) {
    if (!vcf) {
        return []
    }
    def index = [ file("${vcf}.tbi"), file("${vcf}.csi") ].find { f -> f.exists() }
    if (!index) {
        error("EnPACT: no index for --vcf ${vcf}: create one with `tabix -p vcf ${vcf}` or `bcftools index ${vcf}`")
    }
    return index
}

// The contexts of the sample sheet (params.contexts; nf-schema checks it against assets/schema_contexts.json):
// [name, expression, its own annotation or null, annotation format or null] per row, paths relative to the sheet
def contextRows(sheet) {
    if (!sheet) {
        return []
    }
    def folder = file(sheet, checkIfExists: true).parent
    return samplesheetToList(sheet, "${projectDir}/assets/schema_contexts.json").collect { row ->
        [ row[0].context, folder.resolve(row[1].toString()), row[2] ? folder.resolve(row[2].toString()) : null, row[3] ?: null ]
    }
}

// .fai (and .gzi for bgzipped FASTA) next to the FASTA; [] when absent (pyfaidx then indexes the staged copy)
def fastaIndex(fasta) {
    return fasta ? [ file("${fasta}.fai"), file("${fasta}.gzi") ].findAll { f -> f.exists() } : []
}

// Predictor weights: a local (or object-storage) checkpoint directory is staged into the tasks;
// anything else is a Hugging Face model id, downloaded by each task (see docs/nextflow.md, offline use);
// none: the predictor's default weights
def weightsInput(weights) {
    if (!weights) {
        return [ '', [] ]
    }
    def is_path = weights.contains('://') || weights.startsWith('/') || weights.startsWith('.') || file(weights).exists()
    return is_path ? [ '', file(weights, checkIfExists: true) ] : [ weights, [] ]
}

workflow {

    main:
    // --help, or --help NAME for one parameter: the help, and nothing started (exit status 0)
    if (params.help && params.help.toString() != 'false') {
        def topic = params.help.toString() == 'true' ? '' : params.help.toString()
        log.info(paramsHelp([command: 'nextflow run . -profile test,venv --outdir results'], topic))
        return
    }
    if (isTrue(params.validate_params)) {
        validateParameters()
    }
    log.info(paramsSummaryLog(workflow))

    // the run's parameters, for ENPACT_CHECK (command-line values arrive as strings; `enpact check` casts them
    // with the schema's types, as nf-schema does for validation)
    ch_params = channel.value(groovy.json.JsonOutput.toJson(params))
        .collectFile(name: 'nextflow_params.json')
        .map { json -> [ [id: 'params'], json ] }

    def gwas_files = params.gwas ? params.gwas.toString().tokenize(',').collect { path -> path.trim() }.findAll { path -> path } : []
    def fasta      = inputFile(params.fasta)
    def expression = inputFile(params.expression)
    def vcf        = inputFile(params.vcf)

    ch_fasta       = channel.value([ [id: fasta ? fasta.baseName : 'fasta'], fasta, fastaIndex(params.fasta) ])
    ch_annotation  = channel.value([ [id: 'loci'], inputFile(params.annotation) ])
    ch_expression  = channel.value([ [id: expression ? expression.baseName : 'expression'], expression ])
    ch_vcf         = channel.value([ [id: vcf ? vcf.simpleName : 'vcf'], vcf, vcfIndex(params.vcf) ])
    ch_samples     = channel.value([ [id: 'samples'], inputFile(params.samples) ])
    ch_weights     = channel.value(weightsInput(params.weights ? params.weights.toString() : ''))
    ch_gwas        = channel.fromList(gwas_files.collect { path -> [ [id: file(path).name], file(path, checkIfExists: true) ] })
    // the loci to personalize: near signals of the first GWAS file (lin_gwas_pvalue), credible-set variants,
    // regions (as `enpact run` selects them); all loci without any of them
    def selecting  = params.lin_gwas_pvalue != null || params.select_variants || params.select_regions
    ch_selection   = channel.value([ [id: 'selection'],
                                     params.lin_gwas_pvalue != null && gwas_files ? file(gwas_files[0], checkIfExists: true) : [],
                                     inputFile(params.select_variants), inputFile(params.select_regions) ])

    // the training data: one context per row of the sample sheet, or the single expression (meta.context null)
    def rows          = contextRows(params.contexts)
    def annotation    = inputFile(params.annotation)
    def context_names = rows.collect { row -> row[0] }
    ch_contexts = rows
        ? channel.fromList(rows.collect { name, matrix, own, format ->
            [ [id: name, context: name, annotation_format: format], own ? file(own, checkIfExists: true) : annotation,
              file(matrix, checkIfExists: true) ] })
        : channel.of([ [id: 'loci'], annotation, expression ])
    ch_context_sheet = channel.value([ [id: 'contexts'], inputFile(params.contexts),
                                       rows.collectMany { _name, matrix, own, _format -> own ? [ matrix, own ] : [ matrix ] } ])
    // the panel of the SNP covariance: covariance_vcf (reference: true), else the linearization panel
    ch_covariance_panel = params.covariance_vcf
        ? channel.value([ [id: 'reference_panel', reference: true], inputFile(params.covariance_vcf), vcfIndex(params.covariance_vcf),
                          [id: 'panel_samples'], inputFile(params.covariance_samples) ])
        : channel.value([ [id: 'panel', reference: false], vcf, vcfIndex(params.vcf), [id: 'panel_samples'], inputFile(params.samples) ])

    ENPACT(
        ch_params,
        ch_fasta,
        ch_annotation,
        ch_expression,
        ch_contexts,
        ch_context_sheet,
        context_names,
        ch_vcf,
        ch_samples,
        ch_covariance_panel,
        ch_weights,
        ch_gwas,
        ch_selection,
        selecting,
        channel.value([ [id: 'truth'], inputFile(params.truth_causal_genes) ])
    )

    // Software versions of every task (topic channel) -> pipeline_info/enpact_software_versions.yml
    channel.topic('versions')
        .map { process, tool, version -> [ process.tokenize(':').last(), "${tool}: ${version}" ] }
        .unique()
        .groupTuple(sort: true)
        .map { process, tools -> "${process}:\n" + tools.collect { line -> "    ${line}" }.join('\n') }
        .collectFile(name: 'enpact_software_versions.yml', sort: true, newLine: true)
        .set { ch_versions_yml }
    SOFTWARE_VERSIONS(ch_versions_yml)
}

// pipeline_info/enpact_software_versions.yml, published by publishDir like every other result (so Seqera Platform
// lists it as a report); a native task: it runs inside Nextflow, no container, no interpreter start-up
process SOFTWARE_VERSIONS {
    tag 'versions'
    label 'process_single'

    input:
    val(collected)   // the file collectFile wrote (a native task stages nothing: a path input would name a copy that is never made)

    output:
    path('enpact_software_versions.yml'), emit: yml

    exec:
    task.workDir.mkdirs()
    task.workDir.resolve('enpact_software_versions.yml').text = collected.text
}
