// Nest's own routing keys for a batch of patterns, for vidmesh's pattern tests.
// Usage: node routes.js < patterns.json
// Reads a JSON list of patterns from stdin and prints one JSON line: the list of
// transformPatternToRoute(pattern) results, in order (what a Nest server and client route by).
'use strict';
const fs = require('fs');
const { transformPatternToRoute } = require('@nestjs/microservices/utils/transform-pattern.utils');

const patterns = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(`${JSON.stringify(patterns.map((pattern) => transformPatternToRoute(pattern)))}\n`);
