export * from './certificate.js';
export * from './identity-store.js';
export * from './invite.js';
export * from './keys.js';
export * from './control.js';
