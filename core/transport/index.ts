export * from './subflow.js';
export * from './packet-protection.js';
export * from './replay-window.js';
export * from './udp-subflow.js';
export * from './udp-endpoint.js';
export * from './tcp-subflow.js';
export * from './tcp-listener.js';
