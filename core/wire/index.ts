export * from './frame.js';
export * from './varint.js';
export * from './encode.js';
export * from './decode.js';
export * from './packet-header.js';
export * from './record-decoder.js';
