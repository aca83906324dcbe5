#!/usr/bin/env node
// Reference SMS calculators for crates/herald-sms/tests/reference_calculators.rs.
//
// Reads a JSON array of strings on stdin and prints a JSON array with, for each string, what two
// public npm implementations make of it:
//   splitSms: split-sms (code-unit based splitter)
//   twilio:   sms-segments-calculator (Twilio's Message Segment Calculator, grapheme based)
// each as {encoding: "GSM7"|"UCS2", segments, units} with units in septets (GSM7) or UTF-16 code
// units (UCS2), the way herald counts them. `twilio.multiCodepointGraphemes` tells whether the text
// holds a grapheme cluster of more than one code point, which Twilio keeps whole (see docs/sms.md).
//
// Install once: npm ci --prefix crates/herald-sms/tests/reference
'use strict';

const splitSms = require('split-sms');
const { SegmentedMessage } = require('sms-segments-calculator');

function viaSplitSms(text) {
  const r = splitSms.split(text);
  const gsm = r.characterSet === splitSms.GSM;
  return {
    encoding: gsm ? 'GSM7' : 'UCS2',
    segments: r.parts.length,
    units: gsm ? r.bytes : r.bytes / 2,
  };
}

function viaTwilio(text) {
  const m = new SegmentedMessage(text, 'auto', false);
  let units = 0;
  for (const c of m.encodedChars) units += c.codeUnits.length;
  return {
    encoding: m.encodingName === 'GSM-7' ? 'GSM7' : 'UCS2',
    segments: m.segmentsCount,
    units,
    multiCodepointGraphemes: m.graphemes.some((g) => [...g].length > 1),
  };
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  input += chunk;
});
process.stdin.on('end', () => {
  const texts = JSON.parse(input);
  const out = texts.map((t) => ({ splitSms: viaSplitSms(t), twilio: viaTwilio(t) }));
  process.stdout.write(JSON.stringify(out));
});
