/*
 * Renders the script of every module the way Nextflow would, for the CLI contract test
 * (tests/test_nextflow_contract.py):
 *   1. conf/base.config and conf/modules.config are read with ConfigSlurper (withName:/withLabel:
 *      selectors rewritten to plain keys), with `params` bound to one parameter scenario;
 *   2. the ext.* closures of the selectors that match the process (generic < withLabel < withName)
 *      are evaluated with the task's inputs, params and task in scope;
 *   3. the module's script section (preamble + triple-quoted string, extracted by the Python test) is
 *      evaluated with the inputs and `task` (no `params`: modules must not read them), giving the
 *      shell script and the declared output patterns.
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

// Nextflow memory/duration literals (6.GB, 4.h) used outside closures
[Integer, Long, BigDecimal].each { cls ->
    ['KB', 'MB', 'GB', 'TB', 'ms', 's', 'm', 'h', 'd'].each { unit ->
        cls.metaClass."get${unit}" = { -> "${delegate}.${unit}".toString() }
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
    def result = [id: entry.id, script: null, outputs: null, ext: null, error: null]
    try {
        def ordered = [generic: [:], label: [:], name: [:]]
        for (String configFile : entry.configs) {
            def cacheKey = configFile + '\u0000' + entry.params.toString()
            if (!configCache.containsKey(cacheKey)) {
                def slurper = new ConfigSlurper()
                slurper.setBinding([params: entry.params])
                configCache[cacheKey] = slurper.parse(selectorText(new File(configFile).text))
            }
            def config = configCache[cacheKey]
            config.process.each { key, value ->
                if (key == 'ext') ordered.generic.putAll(value)
                else if (key.toString().startsWith('withLabel:') && value.ext
                         && selectorMatches(key.toString().substring(10), entry.labels)) ordered.label.putAll(value.ext)
                else if (key.toString().startsWith('withName:') && value.ext
                         && selectorMatches(key.toString().substring(9), [entry.process])) ordered.name.putAll(value.ext)
            }
        }
        def extRaw = [:]
        extRaw.putAll(ordered.generic); extRaw.putAll(ordered.label); extRaw.putAll(ordered.name)
        def workflowInfo = [profile: 'standard', containerEngine: null]
        def task = [process: entry.process, name: "${entry.process} (1)".toString(), cpus: 2, attempt: 1,
                    memory: '6.GB', index: 1, accelerator: entry.params.use_gpu ? [request: 1] : null, ext: [:]]
        def scope = [:] + entry.inputs + [params: entry.params, task: task, workflow: workflowInfo]
        def ext = [:]
        extRaw.each { key, value -> ext[key] = evaluate(value, scope) }
        task.ext = ext
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
        result.ext = ext.collectEntries { k, v -> [k, v instanceof Closure ? '<closure>' : v] }
    } catch (Throwable e) {
        result.error = "${e.class.simpleName}: ${e.message}".toString()
    }
    results << result
}
println toJson(results)
