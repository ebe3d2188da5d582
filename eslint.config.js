import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'eslint.config.js', 'bin/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
      // DESIGN §2: core/ never imports Electron or React; renderer/ never imports Node.
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './core', from: './electron', message: 'core/ must not import electron/' },
            { target: './core', from: './renderer', message: 'core/ must not import renderer/' },
            {
              target: './renderer',
              from: './core',
              except: ['./host/contract.ts'],
              message: 'renderer/ talks to core only through the contract',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['electron', 'react', 'react-dom'].map((name) => ({
            name,
            message: 'not in core/',
          })),
        },
      ],
    },
  },
  {
    // DESIGN §2: the renderer imports no Node module (it runs sandboxed, or in a browser).
    files: ['renderer/src/**/*.{ts,tsx}'],
    rules: { 'import-x/no-nodejs-modules': 'error' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
