/*
 * Syntax check of Nextflow (.nf, .nf.test) and config files with the Groovy 4 parser, up to the
 * CONVERSION phase (source -> AST: syntax only; no class resolution, no Nextflow transforms).
 * Used by tests/test_nextflow_static.py; one JVM checks every file given on the command line.
 * Output: one line per file, "OK<TAB>path" or "ERROR<TAB>path<TAB>message (newlines as ' | ')".
 */
import org.codehaus.groovy.control.CompilationFailedException
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases

for (String path : args) {
    def unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(path))
    try {
        unit.compile(Phases.CONVERSION)
        println "OK\t${path}"
    } catch (CompilationFailedException e) {
        println "ERROR\t${path}\t" + e.message.readLines().findAll { line -> line.trim() }.join(' | ')
    }
}
