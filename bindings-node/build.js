'use strict'
// `npm install ./bindings-node` runs this: builds the native addon from source with cargo (release)
// and puts it where index.js looks for it. Needs only Rust (cargo) on the machine; the napi CLI
// (`npm run build`) does the same and also regenerates index.js / index.d.ts for development.
const { execFileSync } = require('node:child_process')
const { copyFileSync } = require('node:fs')
const { join } = require('node:path')

const names = {
  'linux-x64': ['libkeeptrusts_node.so', 'keeptrusts.linux-x64-gnu.node'],
  'linux-arm64': ['libkeeptrusts_node.so', 'keeptrusts.linux-arm64-gnu.node'],
  'darwin-x64': ['libkeeptrusts_node.dylib', 'keeptrusts.darwin-x64.node'],
  'darwin-arm64': ['libkeeptrusts_node.dylib', 'keeptrusts.darwin-arm64.node'],
}
const pair = names[`${process.platform}-${process.arch}`]
if (!pair) {
  console.error(`keeptrusts: no build recipe for ${process.platform}-${process.arch}; run \`npx napi build --platform --release\` in bindings-node`)
  process.exit(1)
}
try {
  execFileSync('cargo', ['build', '--release', '-p', 'keeptrusts-node'], { cwd: __dirname, stdio: 'inherit' })
} catch (e) {
  console.error('keeptrusts: building the native addon needs Rust (cargo) — https://rustup.rs')
  process.exit(1)
}
const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: __dirname, encoding: 'utf8' }))
copyFileSync(join(meta.target_directory, 'release', pair[0]), join(__dirname, pair[1]))
console.log(`keeptrusts: built ${pair[1]}`)
