// Runs one JavaScript program (CommonJS, as MultiPL-E's tests are) and proves that its tests completed.
//
// Usage: node run_node.js PROGRAM TESTS_LINE PROOF_FD, with a per-run secret line on standard input.
//
// The program runs as the main CommonJS module (``require.main === module``, as under plain node). Its wrapper
// is made inside a closure that holds a function under a name made of random bytes for this run, and a call
// to that function is appended after the program's last line, on a line of its own; the secret is written
// to PROOF_FD (a pipe to the executor, not stdout) once, and only when the call comes from that very line of
// the program's file (not from eval or new Function, which the program could use once it read the name in its
// own wrapper's source), made by the wrapper that this harness called (not by the wrapper called again by the
// program, with arguments of its choosing). The call sites are read with the stack-trace machinery as it was
// before the program ran (the program may replace Error.prepareStackTrace or CallSite's methods; the harness
// uses its own copies). The function is no argument of the wrapper (``arguments`` does not reach it). A
// completion that calls process.exit(0) before the tests ran leaves no proof and does not pass.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

function readSecret() {
  const buffer = Buffer.alloc(128);
  let length = 0;
  while (length === 0 || buffer[length - 1] !== 10) {
    let got = 0;
    try {
      got = fs.readSync(0, buffer, length, buffer.length - length, null);
    } catch (error) {
      if (error.code === 'EAGAIN') continue;
      throw error;
    }
    if (got === 0 || length + got >= buffer.length) {
      fs.writeSync(2, 'codequant harness: no secret on standard input\n');
      process.exit(2);
    }
    length += got;
  }
  return buffer.subarray(0, length);
}

// What the proof check uses, as it was before the program ran.
const { apply, defineProperty, getOwnPropertyDescriptor } = Reflect;
const IntrinsicError = Error;
const captureStackTrace = Error.captureStackTrace;
const isArray = Array.isArray;
const writeSync = fs.writeSync;
const STACK_NAMES = ['prepareStackTrace', 'stackTraceLimit'];
const siteMethods = (() => {
  const saved = getOwnPropertyDescriptor(IntrinsicError, 'prepareStackTrace');
  IntrinsicError.prepareStackTrace = (_, sites) => sites;
  const site = new IntrinsicError().stack[0];
  if (saved) defineProperty(IntrinsicError, 'prepareStackTrace', saved);
  else delete IntrinsicError.prepareStackTrace;
  const prototype = Object.getPrototypeOf(site);
  return {
    file: prototype.getFileName,
    line: prototype.getLineNumber,
    isEval: prototype.isEval,
    name: prototype.getFunctionName,
  };
})();

// The caller of ``completed`` and its caller, or null when the program has made the stack-trace machinery
// unusable (a non-configurable prepareStackTrace or stackTraceLimit). Only functions and copies taken before the
// program ran, and no method of an object the program can patch (Array.prototype's included).
function callSites() {
  const saved = [getOwnPropertyDescriptor(IntrinsicError, STACK_NAMES[0]),
    getOwnPropertyDescriptor(IntrinsicError, STACK_NAMES[1])];
  const values = [(_, sites) => sites, 6];
  const holder = {};
  try {
    for (let i = 0; i < 2; i++) {
      if (!defineProperty(IntrinsicError, STACK_NAMES[i], { value: values[i], writable: true, configurable: true })) {
        return null;
      }
    }
    apply(captureStackTrace, IntrinsicError, [holder, callSites]);
    const sites = holder.stack;  // [completed, its caller, that one's caller, ...]
    return isArray(sites) && sites.length >= 3 ? [sites[1], sites[2]] : null;
  } catch {
    return null;
  } finally {
    for (let i = 0; i < 2; i++) {
      if (saved[i]) defineProperty(IntrinsicError, STACK_NAMES[i], saved[i]);
      else delete IntrinsicError[STACK_NAMES[i]];
    }
  }
}

function main() {
  const [file, testsLine, proofFd] = process.argv.slice(2);
  const secret = readSecret();
  const read = fs.readFileSync(file, 'utf8');
  // As node does for a file it runs, a first line starting with #! is not code (a comment keeps the columns).
  const source = read.startsWith('#!') ? `//${read.slice(2)}` : read;
  const done = `__cq_done_${crypto.randomBytes(12).toString('hex')}`;
  // The wrapper starts on the program's first line, so line numbers in stack traces stay the program's own;
  // the call to ``done`` is alone on the line after the program's last one.
  const tail = Number(testsLine) > 0 ? `\n;${done}();\n}` : '\n}';
  const doneLine = source.split('\n').length + 1;
  let proven = false;
  const completed = () => {
    const sites = proven ? null : callSites();
    if (sites === null) return;
    const caller = sites[0];
    const runner = sites[1];
    const fromTail = apply(siteMethods.file, caller, []) === file && apply(siteMethods.line, caller, []) === doneLine
      && !apply(siteMethods.isEval, caller, []);
    const fromHarness = apply(siteMethods.file, runner, []) === __filename
      && apply(siteMethods.name, runner, []) === 'main';
    if (fromTail && fromHarness) {
      proven = true;
      writeSync(Number(proofFd), secret);
    }
  };
  const head = `(function (${done}) { return function (exports, require, module, __filename, __dirname) {`;
  let wrapper;
  try {
    wrapper = vm.runInThisContext(head + source + tail + '; })', { filename: file })(completed);
  } catch (error) {
    if (error instanceof SyntaxError) {
      fs.writeSync(2, `codequant: the program does not compile\n${error.stack}\n`);
      process.exit(1);
    }
    throw error;
  }
  const module = new Module(file, null);
  module.id = '.';
  module.filename = file;
  module.paths = Module._nodeModulePaths(path.dirname(file));
  const require = Module.createRequire(file);
  require.main = module;  // as under plain node: the program is the main module
  process.mainModule = module;
  wrapper.call(module.exports, module.exports, require, module, file, path.dirname(file));
  module.loaded = true;
}

main();
