/*
 * Renders the script of every module the way Nextflow would, for the contract, parity and profile tests
 * (tests/test_nextflow_contract.py, test_nextflow_parity.py, test_nextflow_profiles.py):
 *   1. the config files (conf/base.config, conf/modules.config, the profiles') are read with ConfigSlurper
 *      (withName:/withLabel: selectors rewritten to plain keys), with `params` bound to one parameter set;
 *   2. the ext.* closures (ext.prefix; ext.args is the user's) and directives of the selectors that match
 *      the process (generic < withLabel < withName) are evaluated with the task's inputs, params and task
 *      in scope, and publishDir's path and saveAs for the files asked about;
 *   3. the module's script section (preamble + triple-quoted string, extracted by the Python test) is
 *      evaluated with the inputs (the step's options among them) and `task` (no `params`: modules must
 *      not read them), giving the shell script and the declared output patterns.
 * Argument: a Groovy data file (written by the test) that evaluates to a list of closures, each returning
 *   [id:, process:, labels:, configs: [paths], script_file:, params:, use_gpu:, inputs: [:]]
 * Output (stdout): JSON list of [id:, script:, outputs:, ext:, error:].
 */

class FakePath {
    String name
    FakePath(String name) { this.name = name }
    String getBaseName() { def n = new File(name).name; n.contains('.') ? n.substring(0, n.lastIndexOf('.')) : n }
    String getSimpleName() { def n = new File(name).name; n.contains('.') ? n.substring(0, n.indexOf('.')) : n }
    String getExtension() { def n = new File(name).name; n.contains('.') ? n.substring(n.lastIndexOf('.') + 1) : '' }
    String getName() { new File(name).name }
    String toString() { name }
    boolean asBoolean() { true }
}

// several staged files: renders blank-separated, like Nextflow's BlankSeparatedList
class FakeList implements Iterable {
    List items
    FakeList(List items) { this.items = items }
    Iterator iterator() { items.iterator() }
    int size() { items.size() }
    String toString() { items.join(' ') }
    boolean asBoolean() { !items.isEmpty() }
}

String toJson(Object value) {
    if (value == null) return 'null'
    if (value instanceof Boolean || value instanceof Number) return value.toString()
    if (value instanceof Map) return '{' + value.collect { k, v -> toJson(k.toString()) + ': ' + toJson(v) }.join(', ') + '}'
    if (value instanceof Collection) return '[' + value.collect { v -> toJson(v) }.join(', ') + ']'
    def text = value.toString()
    def out = new StringBuilder('"')
    text.each { String ch ->
        switch (ch) {
            case '"': out.append('\\"'); break
            case '\\': out.append('\\\\'); break
            case '\n': out.append('\\n'); break
            case '\r': out.append('\\r'); break
            case '\t': out.append('\\t'); break
            default:
                if ((int) ch.charAt(0) < 0x20) out.append(String.format('\\u%04x', (int) ch.charAt(0)))
                else out.append(ch)
        }
    }
    out.append('"').toString()
}

// Nextflow memory and duration literals (6.GB, 4.h): amounts in bytes or milliseconds that multiply and compare
class Amount implements Comparable<Amount> {
    BigDecimal value
    String unit   // 'bytes' or 'ms'
    Amount(BigDecimal value, String unit) { this.value = value; this.unit = unit }
    Amount multiply(Number n) { new Amount(value * n, unit) }
    int compareTo(Amount other) { value <=> other.value }
    String toString() { "${value.toBigInteger()} ${unit}" }
}
def units = [KB: [1024G, 'bytes'], MB: [1024G ** 2, 'bytes'], GB: [1024G ** 3, 'bytes'], TB: [1024G ** 4, 'bytes'],
             ms: [1G, 'ms'], s: [1000G, 'ms'], m: [60000G, 'ms'], h: [3600000G, 'ms'], d: [86400000G, 'ms']]
[Integer, Long, BigDecimal].each { cls ->
    units.each { name, spec ->
        cls.metaClass."get${name.capitalize()}" = { -> new Amount(new BigDecimal(delegate.toString()) * spec[0], spec[1]) }
    }
}

def selectorText(String text) {
    text = text.replaceAll(/(withName|withLabel)\s*:\s*(['"])(.+?)\2\s*\{/) { all, kind, quote, pattern -> "'${kind}:${pattern}' {" }
    text.replaceAll(/(withName|withLabel)\s*:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\{/) { all, kind, pattern -> "'${kind}:${pattern}' {" }
}

boolean selectorMatches(String pattern, List<String> values) {
    def negate = pattern.startsWith('!')
    def regex = negate ? pattern.substring(1) : pattern
    def hit = values.any { v -> v ==~ regex }
    negate ? !hit : hit
}

Object evaluate(Object value, Map scope) {
    if (!(value instanceof Closure)) return value
    def closure = ((Closure) value).rehydrate(scope, value.owner, value.thisObject)
    closure.resolveStrategy = Closure.DELEGATE_FIRST
    def result = closure.call()
    result instanceof GString ? result.toString() : result
}

def dataShell = new GroovyShell(new Binding([
    p : { String name -> new FakePath(name) },
    pl: { Object... names -> new FakeList(names.collect { n -> new FakePath(n.toString()) }) },
]))
def entries = dataShell.evaluate(new File(args[0])).collect { Closure entry -> entry.call() }
def results = []

def configCache = [:]
def scriptCache = [:]
for (Map entry : entries) {
    def result = [id: entry.id, script: null, outputs: null, ext: null, directives: null, published: null, error: null]
    try {
        // settings of the process: generic < withLabel < withName; within a level, later config files win
        def ordered = [generic: [:], label: [:], name: [:]]
        def merge = { Map target, Map values ->
            values.each { key, value ->
                if (key == 'ext') {
                    target.ext = (target.ext ?: [:]) + value
                } else if (!key.toString().startsWith('with')) {
                    target[key] = value
                }
            }
        }
        for (String configFile : entry.configs) {
            def cacheKey = configFile + '\u0000' + entry.params.toString()
            if (!configCache.containsKey(cacheKey)) {
                def slurper = new ConfigSlurper()
                slurper.setBinding([params: entry.params])
                configCache[cacheKey] = slurper.parse(selectorText(new File(configFile).text))
            }
            def config = configCache[cacheKey]
            merge(ordered.generic, config.process)
            config.process.each { key, value ->
                if (key.toString().startsWith('withLabel:') && selectorMatches(key.toString().substring(10), entry.labels)) {
                    merge(ordered.label, value)
                } else if (key.toString().startsWith('withName:') && selectorMatches(key.toString().substring(9), [entry.process])) {
                    merge(ordered.name, value)
                }
            }
        }
        def raw = [:]
        raw.putAll(ordered.generic); raw.putAll(ordered.label); raw.putAll(ordered.name)
        raw.ext = (ordered.generic.ext ?: [:]) + (ordered.label.ext ?: [:]) + (ordered.name.ext ?: [:])
        def workflowInfo = [profile: entry.profile ?: 'standard', containerEngine: entry.engine]
        def attempt = entry.attempt ?: 1
        def executor = raw.executor instanceof Closure ? null : (raw.executor ?: 'local')
        def task = [process: entry.process, name: "${entry.process} (1)".toString(), cpus: 2, attempt: attempt,
                    memory: '6.GB', index: 1, executor: executor,
                    accelerator: entry.params.use_gpu ? [request: 1] : null, ext: [:]]
        def scope = [:] + (entry.inputs ?: [:]) + [params: entry.params, task: task, workflow: workflowInfo]
        def ext = [:]
        raw.ext.each { key, value ->
            try {
                ext[key] = evaluate(value, scope)
            } catch (Exception e) {
                // directive-only entries have no inputs for closures such as ext.prefix = { meta.id }
                if (entry.script_file) throw e
                ext[key] = null
            }
        }
        task.ext = ext
        def directives = [:]
        raw.each { key, value -> if (key != 'ext' && key != 'publishDir') directives[key] = evaluate(value, scope) }
        // where each of entry.publish_files (task-relative output names) is published: path/saveAs(name), or null
        if (entry.publish_files != null) {
            def publish = raw.publishDir instanceof Map ? raw.publishDir : [:]
            def base = evaluate(publish.path, scope)
            def saveAs = publish.saveAs ? ((Closure) publish.saveAs).rehydrate(scope, publish.saveAs.owner, publish.saveAs.thisObject) : null
            if (saveAs) saveAs.resolveStrategy = Closure.DELEGATE_FIRST
            result.published = entry.publish_files.collectEntries { name ->
                def saved = saveAs ? saveAs.call(name) : name
                [name, saved == null || base == null ? null : "${base}/${saved}".toString()]
            }
        }
        result.directives = directives.collectEntries { k, v ->
            [k, v instanceof Amount ? [(v.unit): v.value.toBigInteger()] : v instanceof Closure ? '<closure>' : v]
        }
        result.ext = ext.collectEntries { k, v -> [k, v instanceof Closure ? '<closure>' : v] }
        if (entry.script_file) {
            def binding = new Binding([:] + entry.inputs + [task: task, workflow: workflowInfo])
            if (!scriptCache.containsKey(entry.script_file)) {
                scriptCache[entry.script_file] = new GroovyShell().parse(new File(entry.script_file))
            }
            def script = scriptCache[entry.script_file]
            script.binding = binding
            def rendered = script.run()
            // Nextflow removes the common indentation of a script block before running it
            result.script = rendered.script.toString().stripIndent()
            result.outputs = rendered.outputs.collect { o -> o.toString() }
        }
    } catch (Throwable e) {
        result.error = "${e.class.simpleName}: ${e.message}".toString()
    }
    results << result
}
println toJson(results)
